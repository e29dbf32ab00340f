//! Every span delivered or accounted for: the local trace file is complete run after run with a
//! core kept busy, a hung collector neither loses spans nor holds the run, log lines join their
//! traces, and the standard variables are honoured.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Spans per subject with one file: process_subject, process_file, load_file, process_image,
/// three stages, write_output.
const SPANS_PER_SUBJECT: usize = 8;

fn dataset(dir: &Path, subjects: &str) {
    synth(
        dir,
        &[
            "--subjects",
            subjects,
            "--shape",
            "24,24,24",
            "--voxel-size",
            "6,6,6",
        ],
    );
}

/// (span name, trace id, bids.subject of the root) of every span in the run's trace files.
fn spans_in(out: &Path) -> Vec<(String, String, Option<String>)> {
    files_under(&out.join("logs"))
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".jsonl"))
        .flat_map(|f| trace_file_spans(f))
        .map(|s| {
            let subject = s["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|kv| kv["key"] == "bids.subject"))
                .and_then(|kv| kv["value"]["stringValue"].as_str())
                .filter(|_| s["parentSpanId"].as_str().unwrap_or("").is_empty())
                .map(str::to_owned);
            (
                s["name"].as_str().unwrap().to_owned(),
                s["traceId"].as_str().unwrap().to_owned(),
                subject,
            )
        })
        .collect()
}

/// Keeps one core busy until dropped.
struct Busy(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Busy {
    fn start() -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut x = 0u64;
            while !flag.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
        Busy(stop, Some(thread))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

fn run_env(bids: &Path, out: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = neuro_batch();
    cmd.arg("run")
        .arg(bids)
        .arg(out)
        .arg("participant")
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_TRACES_SAMPLER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    outcome(&mut cmd)
}

#[test]
fn every_run_under_load_writes_a_complete_trace_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    dataset(&ds, "4");
    let _busy = Busy::start();
    for i in 0..25 {
        let out = tmp.path().join(format!("out{i}"));
        let (code, _, stderr) = run_env(&ds, &out, &["--threads", "2"], &[]);
        assert_eq!(code, 0, "run {i}: {stderr}");
        let spans = spans_in(&out);
        let subjects: BTreeSet<String> = spans.iter().filter_map(|s| s.2.clone()).collect();
        assert_eq!(subjects.len(), 4, "run {i}: every subject's root span");
        assert_eq!(spans.len(), 4 * SPANS_PER_SUBJECT, "run {i}: every span");
        let report = latest_report(&out);
        assert_eq!(report["traces"]["spans_ended"], 4 * SPANS_PER_SUBJECT);
        assert_eq!(
            report["traces"]["trace_file_written"],
            4 * SPANS_PER_SUBJECT
        );
        assert!(report["warnings"].as_array().unwrap().is_empty());
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// A "collector" that accepts connections and never answers.
fn hung_collector() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until {
            match listener.accept() {
                Ok((conn, _)) => held.push(conn),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            if held.len() > 64 {
                break;
            }
        }
    });
    (url, thread)
}

#[test]
fn a_hung_collector_loses_no_span_and_barely_delays_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    dataset(&ds, "3");
    let timed = |out: &Path, env: &[(&str, &str)]| {
        let started = Instant::now();
        let result = run_env(&ds, out, &[], env);
        (result, started.elapsed())
    };
    let ((code, _, stderr), alone) = timed(&tmp.path().join("alone"), &[]);
    assert_eq!(code, 0, "{stderr}");
    let (url, _collector) = hung_collector();
    let out = tmp.path().join("hung");
    let ((code, _, stderr), hung) = timed(&out, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)]);
    assert_eq!(code, 0, "a collector never fails the run: {stderr}");
    assert_eq!(
        spans_in(&out).len(),
        3 * SPANS_PER_SUBJECT,
        "the local file has every span"
    );
    assert!(
        stderr.contains("not delivered") && stderr.contains("the trace file has them"),
        "{stderr}"
    );
    let extra = hung.saturating_sub(alone);
    eprintln!(
        "hung collector: {:.2} s vs {:.2} s alone (+{:.2} s)",
        hung.as_secs_f64(),
        alone.as_secs_f64(),
        extra.as_secs_f64()
    );
    // Generous on a shared machine; the bounded flush makes it about one second.
    assert!(extra < Duration::from_secs(8), "+{extra:?}");
}

#[test]
fn json_log_lines_join_their_subjects_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let out = tmp.path().join("out");
    dataset(&ds, "3");
    let (code, _, stderr) = run_env(&ds, &out, &["--log-format", "json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let roots: BTreeMap<String, String> = spans_in(&out)
        .into_iter()
        .filter_map(|(_, trace, subject)| Some((subject?, trace)))
        .collect();
    assert_eq!(roots.len(), 3);
    let finished: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["message"] == "subject finished")
        .collect();
    assert_eq!(
        finished.len(),
        3,
        "one line per subject without a terminal: {stderr}"
    );
    for line in finished {
        let subject = line["subject"].as_str().unwrap();
        assert_eq!(
            line["trace_id"].as_str(),
            Some(roots[subject].as_str()),
            "{line}"
        );
        assert_eq!(line["status"], "ok");
        assert_eq!(line["span_id"].as_str().unwrap().len(), 16);
    }
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes into a pipe");
}

#[test]
fn the_standard_variables_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    dataset(&ds, "2");
    let traces_under = |out: &Path| -> Vec<PathBuf> {
        files_under(&out.join("logs"))
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".jsonl"))
            .collect()
    };

    let none = tmp.path().join("none");
    let (code, _, stderr) = run_env(&ds, &none, &[], &[("OTEL_TRACES_EXPORTER", "none")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        traces_under(&none).is_empty() && !stderr.contains("traces:"),
        "{stderr}"
    );

    let no_file = tmp.path().join("no-file");
    let (code, _, stderr) = run_env(&ds, &no_file, &["--no-trace-file"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(traces_under(&no_file).is_empty());

    let sampled = tmp.path().join("sampled");
    let (code, _, stderr) = run_env(
        &ds,
        &sampled,
        &[],
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("(0 of 2 subjects traced"), "{stderr}");
    assert_eq!(
        traces_under(&sampled).len(),
        1,
        "the file the summary names exists"
    );

    for (key, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not-a-url"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ] {
        let (code, _, stderr) = run_env(&ds, &tmp.path().join("bad"), &[], &[(key, value)]);
        assert_eq!(code, 64, "{key}={value}: {stderr}");
        assert!(stderr.contains(key), "names the variable: {stderr}");
    }
    let (code, _, stderr) = run_env(
        &ds,
        &tmp.path().join("bad"),
        &["--otlp-endpoint", "localhost:4318"],
        &[],
    );
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("--otlp-endpoint"), "{stderr}");
}

#[test]
fn analyze_and_compare_say_when_a_trace_file_misses_subjects() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let out = tmp.path().join("out");
    dataset(&ds, "3");
    assert_eq!(run_env(&ds, &out, &[], &[]).0, 0);
    // Lose one subject's spans from the trace file, as a crashed exporter would.
    let file = files_under(&out.join("logs"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".jsonl"))
        .unwrap();
    let lost = spans_in(&out)
        .into_iter()
        .find_map(|(_, trace, subject)| subject.map(|_| trace))
        .unwrap();
    let kept: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            for rs in v["resourceSpans"].as_array_mut().unwrap() {
                for ss in rs["scopeSpans"].as_array_mut().unwrap() {
                    ss["spans"]
                        .as_array_mut()
                        .unwrap()
                        .retain(|s| s["traceId"] != lost.as_str());
                }
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&file, kept.join("\n") + "\n").unwrap();

    let (code, stdout, stderr) =
        outcome(neuro_batch().args(["analyze", "--traces", out.to_str().unwrap()]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("holds 2 subject traces, but its run report says the run traced 3"),
        "{stdout}"
    );
    let (_, _, stderr) = outcome(neuro_batch().args([
        "compare",
        "--baseline",
        out.to_str().unwrap(),
        "--candidate",
        out.to_str().unwrap(),
    ]));
    assert!(
        stderr.contains("warning: baseline:") && stderr.contains("holds 2 subject traces"),
        "{stderr}"
    );
}
