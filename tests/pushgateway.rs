//! `run --metrics-push` against a real Prometheus Pushgateway (Debian's
//! `prometheus-pushgateway`, installed by `.ci/run`), started by the test on loopback: what
//! the gateway serves back must be what the run report says; and a real Prometheus (Debian's)
//! with the stack's config scrapes it, where every PromQL query of the dashboard runs.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server on a loopback port (the Pushgateway, Prometheus), stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Start `command` (told to listen on `url`) and wait until `url/-/ready` answers.
    fn start(mut command: Command, url: String) -> Server {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let server = Server { child, url };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("{}/-/ready", server.url))
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(Instant::now() < deadline, "{command:?} did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

/// A Pushgateway on a free loopback port.
struct Gateway(Server);

impl std::ops::Deref for Gateway {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl Gateway {
    fn start(binary: &Path) -> Gateway {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Memory only: Debian's build persists to /var/lib by default.
            .arg("--persistence.file=");
        Gateway(Server::start(command, format!("http://127.0.0.1:{port}")))
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

impl Drop for Server {
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

/// The sample dataset plus one broken file (the push happens on a partly failed run too), run
/// under `dir` with `--metrics-push url`: its (BIDS_DIR, OUTPUT_DIR).
fn pushed_run(dir: &Path, url: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let bids = dir.join("bids");
    copy_dir(&sample_data(), &bids);
    put(
        &bids,
        "broken",
        "sub-broken_T1w.nii.gz",
        b"not a NIfTI file",
    );
    let out = dir.join("out");
    let (code, _, stderr) = run(&bids, &out, &["--metrics-push", url]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("warning: metrics push"), "{stderr}");
    (bids, out)
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
    let (bids, out) = pushed_run(tmp.path(), &gateway.url);
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

/// A PromQL instant query against `prometheus`: the result vector, or the error it answered.
fn query(prometheus: &Server, promql: &str) -> Result<Vec<Value>, String> {
    let text = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/query", prometheus.url))
        .query(&[("query", promql)])
        .send()
        .unwrap()
        .text()
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    match body["status"].as_str() {
        Some("success") => Ok(body["data"]["result"].as_array().unwrap().clone()),
        _ => Err(body.to_string()),
    }
}

#[test]
fn prometheus_scrapes_pushed_runs_and_every_dashboard_query_runs() {
    let (Some(gateway_binary), Some(prometheus_binary)) = (
        require_tool("prometheus-pushgateway", "PUSHGATEWAY"),
        require_tool("prometheus", "PROMETHEUS"),
    ) else {
        return;
    };
    let gateway = Gateway::start(&gateway_binary);
    let tmp = tempfile::tempdir().unwrap();

    // The stack's config, pointed at loopback and scraping every second.
    let port = free_port();
    let gateway_target = gateway.url.trim_start_matches("http://");
    let config = stack_prometheus_config(prometheus_major_version(&prometheus_binary))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("pushgateway:9091", gateway_target)
        .replace("localhost:9090", &format!("127.0.0.1:{port}"));
    assert!(config.contains(gateway_target));
    let config_file = tmp.path().join("prometheus.yaml");
    std::fs::write(&config_file, config).unwrap();
    let mut command = Command::new(&prometheus_binary);
    command
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .arg("--enable-feature=exemplar-storage");
    let prometheus = Server::start(command, format!("http://127.0.0.1:{port}"));

    let (_, out) = pushed_run(tmp.path(), &gateway.url);
    let report = latest_report(&out);
    let run_id = report["run_id"].as_str().unwrap();

    // The pushed-runs panel's query, once a scrape has brought the push in.
    let (_, dashboard) = dashboard_queries();
    let pushed = dashboard
        .iter()
        .find(|q| q.contains("batch_id!=\"\""))
        .expect("a panel on pushed runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let series = loop {
        let series = query(&prometheus, pushed).unwrap();
        if series.len() == 4 {
            break series;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the push: {series:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for s in &series {
        assert_eq!(s["metric"]["batch_id"], run_id);
        let outcome = s["metric"]["outcome"].as_str().unwrap();
        assert_eq!(
            number(&s["value"][1]),
            report["counts"][outcome].as_f64().unwrap(),
            "{outcome}"
        );
    }
    // The pushed histogram answers the step quantile a person types (README, Metrics).
    let p95 = query(
        &prometheus,
        "histogram_quantile(0.95, sum by (le, step) (neuro_batch_step_duration_milliseconds_bucket{batch_id!=\"\"}))",
    )
    .unwrap();
    assert!(
        p95.iter().any(|s| s["metric"]["step"] == "skull_strip"),
        "{p95:?}"
    );
    // Every dashboard query is PromQL this Prometheus runs (the OTLP and span-metrics series
    // need the collector and Tempo, so those may be empty here).
    for q in &dashboard {
        let q = q.replace("$__rate_interval", "1m");
        if let Err(e) = query(&prometheus, &q) {
            panic!("the dashboard's query does not run: {q}\n{e}");
        }
    }
}
