//! `run --metrics-push` against a real Prometheus Pushgateway (Debian's
//! `prometheus-pushgateway`, installed by `.ci/run`), started by the test on loopback: what
//! the gateway serves back must be what the run report says.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Pushgateway on a free loopback port, stopped when dropped.
struct Gateway {
    child: Child,
    url: String,
}

impl Gateway {
    fn start(binary: &Path) -> Gateway {
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Memory only: Debian's build persists to /var/lib by default.
            .arg("--persistence.file=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-pushgateway");
        let gateway = Gateway {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::blocking::get(format!("{}/-/ready", gateway.url))
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "the Pushgateway did not get ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        gateway
    }

    /// Every pushed group (`/api/v1/metrics`).
    fn groups(&self) -> Vec<Value> {
        let text = reqwest::blocking::get(format!("{}/api/v1/metrics", self.url))
            .unwrap()
            .text()
            .unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        body["data"].as_array().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (just released by the OS).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn number(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_run_pushes_its_metrics_and_they_match_the_report() {
    let Some(binary) = require_tool("prometheus-pushgateway", "PUSHGATEWAY") else {
        return;
    };
    let gateway = Gateway::start(&binary);
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    copy_dir(&sample_data(), &bids);
    // One broken file: the push happens on a partly failed run too.
    put(
        &bids,
        "broken",
        "sub-broken_T1w.nii.gz",
        b"not a NIfTI file",
    );
    let out = tmp.path().join("out");
    let (code, _, stderr) = run(&bids, &out, &["--metrics-push", &gateway.url]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("warning: metrics push"), "{stderr}");
    let report = latest_report(&out);

    let groups = gateway.groups();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let group = &groups[0];
    assert_eq!(group["labels"]["job"], "neuro-batch");
    assert_eq!(group["labels"]["batch_id"], report["run_id"]);
    assert_eq!(group["labels"]["shard"], "all");

    let files = &group["neuro_batch_files_total"];
    assert_eq!(files["type"], "COUNTER");
    for series in files["metrics"].as_array().unwrap() {
        let outcome = series["labels"]["outcome"].as_str().unwrap();
        let expected = report["counts"][outcome].as_f64().unwrap();
        assert_eq!(number(&series["value"]), expected, "{outcome}");
    }
    assert_eq!(report["counts"]["failed"], 1);

    // Each step's count and sum are the report's.
    let records = file_records(&report);
    let histogram = &group["neuro_batch_step_duration_milliseconds"];
    assert_eq!(histogram["type"], "HISTOGRAM");
    let series = histogram["metrics"].as_array().unwrap();
    for step in [
        "load_file",
        "skull_strip",
        "bias_correction",
        "write_output",
    ] {
        let durations: Vec<f64> = records
            .iter()
            .flat_map(|f| f["steps"].as_array().unwrap())
            .filter(|s| s["name"] == step)
            .map(|s| s["duration_ms"].as_f64().unwrap())
            .collect();
        let s = series
            .iter()
            .find(|s| s["labels"]["step"] == step)
            .unwrap_or_else(|| panic!("no {step} series"));
        assert_eq!(number(&s["count"]), durations.len() as f64, "{step}");
        assert_eq!(number(&s["buckets"]["+Inf"]), durations.len() as f64);
        let sum: f64 = durations.iter().sum();
        assert!(
            (number(&s["sum"]) - sum).abs() < 1e-6 * sum.max(1.0),
            "{step}"
        );
    }
    let duration = &group["neuro_batch_run_duration_seconds"]["metrics"][0]["value"];
    assert_eq!(number(duration), report["duration_s"].as_f64().unwrap());

    // A rerun (all skipped) replaces nothing of the first run: it is its own batch.
    let (code, _, stderr) = run(&bids, &out, &["--metrics-push", &gateway.url]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(gateway.groups().len(), 2);
}

#[test]
fn a_push_that_fails_is_one_warning_and_a_bad_url_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (code, _, stderr) = run(
        &sample_data(),
        &tmp.path().join("out"),
        &["--metrics-push", &closed],
    );
    assert_eq!(code, 0, "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("metrics push to"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].starts_with("neuro-batch: warning:"), "{stderr}");

    let (code, _, stderr) = run(
        &sample_data(),
        &tmp.path().join("out2"),
        &["--metrics-push", "pushgateway:9091"],
    );
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("--metrics-push pushgateway:9091"),
        "{stderr}"
    );
}
