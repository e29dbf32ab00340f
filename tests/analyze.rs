//! `neuro-batch analyze` and `neuro-batch trace`, end to end: on the local trace store of a
//! real run, and against captured Tempo responses served on 127.0.0.1.

mod common;
#[path = "../analysis/tests/common/replay.rs"]
mod replay;

use std::path::Path;

use common::{Hog, neuro_batch, outcome, run, synth};
use replay::{Replay, Reply, captured};
use serde_json::Value;

fn analyze(args: &[&str]) -> (i32, String, String) {
    outcome(neuro_batch().arg("analyze").args(args))
}

/// `analyze --traces out --format json EXTRA...`, which must succeed, parsed.
fn json_report(out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--traces", out.to_str().unwrap(), "--format", "json"];
    args.extend(extra);
    let (code, stdout, stderr) = analyze(&args);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// A run over 24 phantoms whose volumes differ up to 64-fold in voxels, with sub-05's file cut
/// short.
fn varied_run(dir: &Path) -> std::path::PathBuf {
    let bids = dir.join("bids");
    let out = dir.join("out");
    synth(
        &bids,
        &[
            "--subjects",
            "24",
            "--shape",
            "48,56,48",
            "--size-jitter",
            "0.6",
            "--seed",
            "3",
        ],
    );
    let broken = bids.join("sub-05/anat/sub-05_T1w.nii.gz");
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let (code, _, stderr) = run(&bids, &out, &["--threads", "1"]);
    assert_eq!(code, 1, "one subject fails: {stderr}");
    out
}

#[test]
fn the_store_report_ranks_file_size_first_for_size_driven_stages_and_finds_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = varied_run(dir.path());
    let table = dir.path().join("spans.json");
    let (code, stdout, stderr) = analyze(&[
        "--traces",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--save-table",
        table.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["schema"], "neuro-batch.analyze/v2");
    assert_eq!(report["source"]["traces"], 24);
    assert!(table.is_file(), "--save-table wrote the span table");

    for stage in [
        "skull_strip",
        "bias_correction",
        "normalization",
        "load_file",
    ] {
        let top = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["span"] == stage)
            .unwrap_or_else(|| panic!("no finding for {stage}"));
        assert_eq!(
            top["attribute"], "file.size_mb",
            "{stage}: {}",
            top["headline"]
        );
        let rho = top["rho"].as_f64().unwrap();
        assert!(rho > 0.5, "{stage}: ρ = {rho}");
        assert_eq!(top["significant"], true, "{}", top["headline"]);
        assert!(top["slope_ms_per_unit"].as_f64().unwrap() > 0.0);
        assert!(
            top["groups"].as_array().unwrap().len() >= 3,
            "several size buckets"
        );
    }

    // The cause first: the top findings are steps, each span once before any span's second
    // finding, and the headline names the slowest step and what explains it.
    let significant: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["significant"] == true)
        .collect();
    let mut spans: Vec<&str> = significant
        .iter()
        .map(|f| f["span"].as_str().unwrap())
        .collect();
    spans.sort_unstable();
    spans.dedup();
    assert!(spans.len() >= 4, "most steps are explained: {spans:?}");
    let top: Vec<&&Value> = significant.iter().take(spans.len().min(5)).collect();
    let mut top_spans: Vec<&str> = top.iter().map(|f| f["span"].as_str().unwrap()).collect();
    for f in &top {
        assert_eq!(
            f["measure"], "duration",
            "a step, not a container: {}",
            f["headline"]
        );
    }
    top_spans.sort_unstable();
    top_spans.dedup();
    assert_eq!(
        top_spans.len(),
        top.len(),
        "no span twice at the top: {top:?}"
    );
    let headline = report["headline"].as_str().unwrap();
    assert!(
        headline.contains("is the slowest step")
            && headline.contains("of the critical path")
            && headline.contains("file.size_mb explains"),
        "{headline}"
    );
    assert!(!report["waiting"].as_array().unwrap().is_empty());

    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["label"], "05");
    assert_eq!(failures[0]["span"], "load_file");
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap()
            .contains("sub-05_T1w.nii.gz")
    );

    // Every span name gets exact percentiles; critical-path shares add up to 1.
    let spans = report["spans"].as_array().unwrap();
    for s in spans {
        assert!(s["p50_ms"].as_f64().unwrap() <= s["p95_ms"].as_f64().unwrap());
        assert!(s["p95_ms"].as_f64().unwrap() <= s["max_ms"].as_f64().unwrap());
    }
    let critical: f64 = spans
        .iter()
        .map(|s| s["critical_path_share"].as_f64().unwrap())
        .sum();
    assert!((critical - 1.0).abs() < 1e-9, "{critical}");
    let slowest = report["slowest"].as_array().unwrap();
    assert_eq!(slowest.len(), 10);
    assert!(slowest[0]["duration_ms"].as_f64() >= slowest[9]["duration_ms"].as_f64());

    // The other formats draw the same report.
    let (code, text, _) = analyze(&["--traces", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(text.contains("What explains it") && text.contains("file.size_mb explains"));
    assert!(text.contains("Failures (1)"));
    let (_, md, _) = analyze(&["--traces", out.to_str().unwrap(), "--format", "markdown"]);
    assert!(md.contains("### What explains it") && md.contains("| span "));
    let (_, linked, _) = analyze(&[
        "--traces",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--grafana-url",
        "http://grafana.lab:3000",
        "--grafana-datasource",
        "lab-tempo",
    ]);
    let linked: Value = serde_json::from_str(&linked).unwrap();
    let link = linked["slowest"][0]["link"].as_str().unwrap();
    assert!(
        link.starts_with("http://grafana.lab:3000/explore?"),
        "{link}"
    );
    assert!(
        link.contains("lab%2Dtempo") && !link.contains("now%2D7d"),
        "{link}"
    );
    let (_, csv, _) = analyze(&["--traces", out.to_str().unwrap(), "--format", "csv"]);
    assert!(csv.starts_with("span,attribute,kind,count,explained,rho,"));
    assert!(csv.lines().count() > 5);
    let html = dir.path().join("report.html");
    let (code, _, _) = analyze(&[
        "--traces",
        out.to_str().unwrap(),
        "--format",
        "html",
        "--output",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.matches("<svg").count() >= 3);
    let first_plot = page.find("<svg").unwrap();
    assert!(page.find("is the slowest step").unwrap() < first_plot);
    assert!(page.find("What explains it").unwrap() < first_plot);
    assert!(!page.contains("src=\"http"), "self-contained");

    // One trace as a waterfall.
    let id = failures[0]["trace_id"].as_str().unwrap();
    let (code, text, stderr) = outcome(neuro_batch().args(["trace", id, "--traces"]).arg(&out));
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with(&format!("trace {id}")));
    assert!(text.contains("process_subject") && text.contains("  load_file"));
    assert!(text.contains("ERROR"));
    assert!(
        text.contains(" +") && text.contains('◆'),
        "offsets and marks:\n{text}"
    );
    assert!(text.contains("file.name=sub-05_T1w.nii.gz"), "{text}");
    let (code, json, stderr) = outcome(
        neuro_batch()
            .args(["trace", id, "--format", "json", "--traces"])
            .arg(&out),
    );
    assert_eq!(code, 0, "{stderr}");
    let rows: Value = serde_json::from_str(&json).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[0]["name"], "process_subject");
    assert_eq!(rows[0]["depth"], 0);
    assert_eq!(rows[0]["start_offset_ms"], 0.0);
    let critical: f64 = rows.iter().filter_map(|r| r["critical_ms"].as_f64()).sum();
    let root = rows[0]["duration_ms"].as_f64().unwrap();
    assert!((critical - root).abs() < 1e-6, "{critical} vs {root}");
    assert!(
        rows.iter()
            .any(|r| r["status"] == "error" && r["error"].is_string())
    );
}

#[test]
fn analyze_over_tempo_uses_what_tempo_has_and_says_what_is_missing() {
    let tempo = Replay::start(replay::run1);
    let (code, stdout, stderr) = analyze(&[
        "--tempo",
        &tempo.url,
        "--start",
        "1795494143",
        "--end",
        "2026-11-24T04:26:25Z",
        "--label",
        "subject.id",
        "--min-count",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["source"]["kind"], "tempo");
    assert_eq!(report["source"]["traces"], 2);
    let notes = report["source"]["notes"].to_string();
    assert!(notes.contains("4 of 6 traces"), "{notes}");
    assert!(
        notes.contains("refused the search with select"),
        "the older Tempo's path is named: {notes}"
    );
    assert_eq!(report["failures"][0]["label"], "sub-04");
    assert_eq!(report["failures"][0]["span"], "bias_correction");
    // Search-first was tried, then the search for the subject roots of the service, in the
    // given window.
    let seen = tempo.seen.lock().unwrap().clone();
    let searches: Vec<_> = seen.iter().filter(|s| s.path == "/api/search").collect();
    assert!(searches[0].query["q"].contains("| select(span:name, span:parentID"));
    assert_eq!(searches[0].accept.as_deref(), Some("application/protobuf"));
    let search = searches[1];
    assert_eq!(
        search.query["q"],
        r#"{resource.service.name="neuro-batch" && name="process_subject"}"#
    );
    assert_eq!(search.query["start"], "1795494143");
    assert_eq!(search.query["end"], "1795494385");

    let (code, text, stderr) = outcome(neuro_batch().args([
        "trace",
        "bdd640fb06671ad11c80317fa3b1799d",
        "--tempo",
        &tempo.url,
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(text.lines().count(), 1 + 22);
    assert!(
        text.contains("      skull_strip"),
        "nested three deep:\n{text}"
    );
}

#[test]
fn tempo_problems_have_their_own_exit_codes_and_messages() {
    let malformed = Replay::start(|_| captured("search_traceql_malformed.txt"));
    let (code, _, stderr) = analyze(&["--tempo", &malformed.url, "--query", "{span.x &&"]);
    assert_eq!(code, 69, "{stderr}");
    assert!(
        stderr.contains("invalid TraceQL query: parse error"),
        "{stderr}"
    );

    let empty = Replay::start(|_| captured("search_traceql_window_in_past.json"));
    let (code, _, stderr) = analyze(&["--tempo", &empty.url, "--since", "2h"]);
    assert_eq!(code, 18, "{stderr}");
    assert!(stderr.contains("try again in a minute"), "{stderr}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, stderr) = analyze(&[
        "--tempo",
        &format!("http://127.0.0.1:{port}"),
        "--timeout",
        "2",
    ]);
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("cannot reach Tempo"), "{stderr}");

    let missing = Replay::start(|_| Reply::status(404));
    let (code, _, stderr) = outcome(neuro_batch().args([
        "trace",
        "0123456789abcdef0123456789abcdef",
        "--tempo",
        &missing.url,
    ]));
    assert_eq!(code, 18, "{stderr}");
    assert!(stderr.contains("is not in Tempo"), "{stderr}");

    let (code, _, stderr) = analyze(&[]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("--traces OUTPUT_DIR"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("traces-x.jsonl");
    std::fs::write(&bad, "{\"resourceSpans\": 3}\n").unwrap();
    let (code, _, stderr) = analyze(&["--traces", bad.to_str().unwrap()]);
    assert_eq!(code, 66, "{stderr}");
    assert!(stderr.contains("traces-x.jsonl:1"), "{stderr}");
}

#[test]
fn a_resume_only_run_is_passed_over_and_trace_ids_may_be_cut_short() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    synth(
        &bids,
        &[
            "--subjects",
            "3",
            "--shape",
            "24,24,24",
            "--voxel-size",
            "6,6,6",
        ],
    );
    assert_eq!(run(&bids, &out, &[]).0, 0);
    let first_run: Vec<std::path::PathBuf> = common::files_under(&out.join("logs"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".jsonl"))
        .collect();
    assert_eq!(first_run.len(), 1);
    // Run ids sort by the second: make sure the resume gets a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(run(&bids, &out, &[]).0, 0, "a resume: everything skipped");

    let (code, stdout, stderr) = analyze(&["--traces", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("only skipped finished inputs (a resume); reading"),
        "{stdout}"
    );
    assert!(stdout.contains("1 other runs' trace files"), "{stdout}");
    assert!(
        stdout.contains(&first_run[0].display().to_string()),
        "the first run is the one read: {stdout}"
    );

    // Any unique start of an id finds the trace; an unknown one says where it looked.
    let text = std::fs::read_to_string(&first_run[0]).unwrap();
    let id = text
        .split("\"traceId\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (code, waterfall, stderr) =
        outcome(neuro_batch().args(["trace", &id[..8], "--traces", out.to_str().unwrap()]));
    assert_eq!(code, 0, "{stderr}");
    assert!(waterfall.contains("process_subject"), "{waterfall}");
    let (code, _, stderr) = outcome(neuro_batch().args([
        "trace",
        "ffffffffffffffffffffffffffffffff",
        "--traces",
        out.to_str().unwrap(),
    ]));
    assert_eq!(code, 18, "{stderr}");
    assert!(stderr.contains("--all-runs"), "{stderr}");
}

#[test]
fn steps_that_wait_for_the_cores_are_told_apart_from_steps_that_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out) = (tmp.path().join("bids"), tmp.path().join("out"));
    synth(
        &bids,
        &["--subjects", "6", "--shape", "40,48,40", "--seed", "5"],
    );
    // Three busy loops per core: the run's one thread gets about a quarter of a core, so
    // three quarters of every step's wall time is spent waiting for it.
    let hog = Hog::start(3);
    let (code, _, stderr) = run(&bids, &out, &["--threads", "1"]);
    drop(hog);
    assert_eq!(code, 0, "{stderr}");
    let report = json_report(&out, &["--min-count", "3"]);
    let waiting = report["waiting"].as_array().unwrap();
    let slowest = waiting
        .iter()
        .find(|w| w["span"] == "bias_correction")
        .expect("bias_correction has CPU figures");
    assert_eq!(slowest["mostly_waiting"], true, "{slowest}");
    assert!(slowest["waiting_share"].as_f64().unwrap() >= 0.5);
    assert_eq!(slowest["worst"].as_array().unwrap().len(), 3);
    let headline = report["headline"].as_str().unwrap();
    assert!(headline.contains("is waiting, not compute"), "{headline}");
    let (_, text, _) = analyze(&["--traces", out.to_str().unwrap(), "--min-count", "3"]);
    assert!(
        text.contains("Waiting or working") && text.contains("of its time is waiting"),
        "{text}"
    );
}

#[test]
fn scanner_and_protocol_facts_reach_every_step_and_the_ranking() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out) = (tmp.path().join("bids"), tmp.path().join("out"));
    synth(
        &bids,
        &[
            "--subjects",
            "6",
            "--shape",
            "24,28,24",
            "--voxel-size",
            "8,8,8",
        ],
    );
    let mut tsv = String::from("participant_id\tsite\tage\n");
    for i in 1..=6 {
        let site = ["north", "south"][i % 2];
        tsv += &format!("sub-{i:02}\t{site}\t{}\n", 30 + i);
    }
    std::fs::write(bids.join("participants.tsv"), tsv).unwrap();
    let (code, _, stderr) = run(&bids, &out, &["--span-attr-from-participants", "site,age"]);
    assert_eq!(code, 0, "{stderr}");
    let trace_file = std::fs::read_dir(out.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".jsonl"))
        .unwrap();
    let attribute = |span: &Value, key: &str| {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
    };
    let mut makers = Vec::new();
    for span in common::trace_file_spans(&trace_file) {
        let site = attribute(&span, "participant.site").expect("participant.site on every span");
        assert!(["north", "south"].contains(&site["stringValue"].as_str().unwrap()));
        assert!(attribute(&span, "participant.age").unwrap()["doubleValue"].is_number());
        if span["name"] == "process_subject" {
            continue;
        }
        // Every span below the subject carries them, so a search for stage spans can rank.
        let maker = attribute(&span, "scanner.manufacturer")
            .unwrap_or_else(|| panic!("{} has no scanner.manufacturer", span["name"]));
        makers.push(maker["stringValue"].as_str().unwrap().to_owned());
        assert_eq!(
            attribute(&span, "image.voxel_mm").unwrap()["stringValue"],
            "8x8x8"
        );
        assert!(attribute(&span, "image.matrix").is_some());
        assert!(attribute(&span, "scanner.field_strength_t").is_some());
    }
    makers.sort();
    makers.dedup();
    assert_eq!(makers, ["GE", "Siemens"], "synth's two scanners");
    let report = json_report(&out, &["--min-count", "3"]);
    let tested: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::iter::once(f["attribute"].as_str().unwrap().to_owned()).chain(
                f["collinear"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned()),
            )
        })
        .collect();
    assert!(
        tested.iter().any(|a| a.starts_with("scanner.")),
        "the scanner is tested as a cause: {tested:?}"
    );
}

#[test]
fn a_slower_protocol_is_named_for_what_it_is_not_for_the_file_size_it_brings() {
    // Half the subjects scanned with a high-resolution protocol (1.25 mm over the same field of
    // view: ~4x the voxels), file sizes otherwise alike, as in a real study; the scanners
    // alternate apart from it.
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out) = (tmp.path().join("bids"), tmp.path().join("out"));
    synth(
        &bids,
        &[
            "--subjects",
            "16",
            "--shape",
            "32,40,32",
            "--acq-highres",
            "1.25",
            "--seed",
            "5",
        ],
    );
    assert!(
        bids.join("sub-03/anat/sub-03_acq-highres_T1w.nii.gz")
            .is_file()
    );
    assert!(
        bids.join("sub-03/anat/sub-03_acq-highres_T1w.json")
            .is_file()
    );
    let (code, _, stderr) = run(&bids, &out, &["--threads", "1"]);
    assert_eq!(code, 0, "{stderr}");
    let report = json_report(&out, &[]);
    let findings = report["findings"].as_array().unwrap();
    let top = findings
        .iter()
        .find(|f| f["span"] == "skull_strip")
        .expect("a skull_strip finding");
    assert_eq!(top["attribute"], "bids.acq", "{}", top["headline"]);
    assert_eq!(top["kind"], "categorical");
    assert_eq!(top["significant"], true, "{}", top["headline"]);
    let groups = top["groups"].as_array().unwrap();
    assert_eq!(groups[0]["label"], "highres", "slowest first");
    assert_eq!(groups[1]["label"], "(none)", "images without acq- compared");
    let collinear: Vec<&str> = top["collinear"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        collinear.contains(&"file.size_mb") && collinear.contains(&"image.voxel_mm"),
        "file size and voxel size are the same cause, folded: {collinear:?}"
    );
    assert!(
        top["headline"].as_str().unwrap().contains("for highres vs"),
        "{}",
        top["headline"]
    );
    // No step is explained twice by what the protocol brings.
    for f in findings.iter().filter(|f| f["significant"] == true) {
        let key = f["attribute"].as_str().unwrap();
        assert!(
            !["file.size_mb", "image.voxel_mm", "array.shape"].contains(&key),
            "{}",
            f["headline"]
        );
    }
}
