//! `neuro-batch compare`, the CI gate: exit codes, verdicts, JUnit, Markdown summary.

mod common;

use std::path::Path;

use common::{neuro_batch, outcome, run, sample_data};
use serde_json::{Value, json};

/// A trace store with one subject trace per duration pair: `process_subject` →
/// `skull_strip` (ms) then `write_output` (ms).
fn store(path: &Path, durations: &[(f64, f64)]) {
    let kv = |k: &str, v: Value| json!({"key": k, "value": v});
    let mut spans = Vec::new();
    for (i, (skull, write)) in durations.iter().enumerate() {
        let trace = format!("{:032x}", i + 1);
        let t0 = 1_795_000_000_000_000_000i64 + i as i64 * 10_000_000_000;
        let ns = |ms: f64| (ms * 1e6) as i64;
        let span = |id: u64, parent: &str, name: &str, start: i64, end: i64| {
            json!({"traceId": trace, "spanId": format!("{id:016x}"), "parentSpanId": parent,
                   "name": name, "kind": 1, "startTimeUnixNano": start.to_string(),
                   "endTimeUnixNano": end.to_string(),
                   "attributes": [kv("bids.subject", json!({"stringValue": format!("{i:02}")}))],
                   "status": {"code": 1}})
        };
        let root = format!("{:016x}", 1);
        spans.push(span(1, "", "process_subject", t0, t0 + ns(skull + write)));
        spans.push(span(2, &root, "skull_strip", t0, t0 + ns(*skull)));
        spans.push(span(
            3,
            &root,
            "write_output",
            t0 + ns(*skull),
            t0 + ns(skull + write),
        ));
    }
    let line = json!({"resourceSpans": [{"resource": {"attributes": [
        kv("service.name", json!({"stringValue": "neuro-batch"}))]},
        "scopeSpans": [{"spans": spans}]}]});
    std::fs::write(path, format!("{line}\n")).unwrap();
}

/// Deterministic, mildly noisy durations around `skull` and `write` ms.
fn durations(n: usize, skull: f64, write: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let wobble = 1.0 + ((i * 7919) % 13) as f64 / 100.0 - 0.06;
            (skull * wobble, write * (2.0 - wobble))
        })
        .collect()
}

fn compare(args: &[&str], envs: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = neuro_batch();
    cmd.arg("compare")
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    outcome(&mut cmd)
}

#[test]
fn a_slower_write_fails_the_gate_and_the_unchanged_stage_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cand) = (dir.path().join("base.jsonl"), dir.path().join("cand.jsonl"));
    store(&base, &durations(20, 100.0, 30.0));
    store(&cand, &durations(20, 100.0, 45.0)); // write_output 50 % slower
    let junit = dir.path().join("perf.xml");
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let (code, stdout, stderr) = compare(
        &[
            "--baseline",
            base.to_str().unwrap(),
            "--candidate",
            cand.to_str().unwrap(),
            "--format",
            "json",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[("GITHUB_STEP_SUMMARY", &summary)],
    );
    assert_eq!(code, 1, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["schema"], "neuro-batch.compare/v3");
    // The subject span contains the write, so it is slower too (by 15 of 130 ms).
    assert_eq!(
        report["regressions"],
        json!(["process_subject", "write_output"])
    );
    let verdict = |name: &str| {
        report["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["span"] == name)
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict("skull_strip"), "no_change");
    assert_eq!(verdict("write_output"), "regression");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="neuro-batch performance" tests="3""#),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n## neuro-batch performance: ❌"),
        "{md}"
    );

    // The same run against itself passes.
    let (code, stdout, _) = compare(
        &[
            "--baseline",
            base.to_str().unwrap(),
            "--candidate",
            base.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("no regression"), "{stdout}");

    // A 50 % slowdown does not count when the minimum effect is 60 %.
    let (code, ..) = compare(
        &[
            "--baseline",
            base.to_str().unwrap(),
            "--candidate",
            cand.to_str().unwrap(),
            "--min-effect",
            "60%",
        ],
        &[],
    );
    assert_eq!(code, 0);
}

#[test]
fn saved_tables_compare_like_trace_files_and_few_spans_are_not_enough() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, _, stderr) = run(&sample_data(), &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    let table = dir.path().join("base.json");
    let status = neuro_batch()
        .args(["analyze", "--format", "json", "--traces"])
        .arg(&out)
        .arg("--save-table")
        .arg(&table)
        .output()
        .unwrap();
    assert!(status.status.success());
    let (code, stdout, stderr) = compare(
        &[
            "--baseline",
            table.to_str().unwrap(),
            "--candidate",
            out.to_str().unwrap(),
            "--format",
            "markdown",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("not enough data (need"), "{stdout}");
    assert!(stdout.contains("| skull_strip "), "{stdout}");
}

#[test]
fn tool_errors_exit_2_not_1() {
    let (code, _, stderr) = compare(&["--baseline", "x"], &[]);
    assert_eq!(code, 2, "missing --candidate: {stderr}");
    let (code, _, stderr) = compare(&["--baseline", "nope", "--candidate", "nope"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("nope: no such file or directory (a batch id needs --tempo)"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "not json\n").unwrap();
    let (code, _, stderr) = compare(
        &[
            "--baseline",
            junk.to_str().unwrap(),
            "--candidate",
            junk.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("junk.jsonl:1"), "{stderr}");
}

#[test]
fn an_undecided_span_warns_and_fails_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cand) = (dir.path().join("base.jsonl"), dir.path().join("cand.jsonl"));
    let b = durations(20, 100.0, 30.0);
    // Each subject moved by up to ±40 %: no clear shift, but far too noisy to rule out 5 %.
    let c: Vec<(f64, f64)> = b
        .iter()
        .enumerate()
        .map(|(i, (s, w))| {
            let f = [1.4, 0.75, 1.3, 0.85, 1.05][i % 5];
            (s * f, w * f)
        })
        .collect();
    store(&base, &b);
    store(&cand, &c);
    let args = [
        "--baseline",
        base.to_str().unwrap(),
        "--candidate",
        cand.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = compare(&args, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("⚠ inconclusive"), "{stdout}");
    assert!(stderr.contains("--fail-on-inconclusive"), "{stderr}");
    let mut strict = args.to_vec();
    strict.push("--fail-on-inconclusive");
    let (code, _, _) = compare(&strict, &[]);
    assert_eq!(code, 1);
}
