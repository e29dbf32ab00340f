//! Telemetry end to end: a real OTLP/HTTP receiver on 127.0.0.1 (protobuf decoded with
//! opentelemetry-proto), the embedded JSON-lines store, a closed port, links to TRACEPARENT,
//! and JSON logs that carry trace ids.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A span, flattened for assertions.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    status: i32,
    status_message: String,
    attrs: HashMap<String, String>,
    events: Vec<(String, HashMap<String, String>)>,
    links: Vec<(String, String)>,
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// Flatten requests into spans and the resource attributes of each.
fn flatten(requests: &[ExportTraceServiceRequest]) -> (Vec<Span>, Vec<HashMap<String, String>>) {
    let (mut spans, mut resources) = (Vec::new(), Vec::new());
    for request in requests {
        for rs in &request.resource_spans {
            resources.push(attrs(&rs.resource.as_ref().expect("resource").attributes));
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    let status = s.status.clone().unwrap_or_default();
                    spans.push(Span {
                        trace: hex::encode(&s.trace_id),
                        id: hex::encode(&s.span_id),
                        parent: hex::encode(&s.parent_span_id),
                        name: s.name.clone(),
                        status: status.code,
                        status_message: status.message,
                        attrs: attrs(&s.attributes),
                        events: s
                            .events
                            .iter()
                            .map(|e| (e.name.clone(), attrs(&e.attributes)))
                            .collect(),
                        links: s
                            .links
                            .iter()
                            .map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id)))
                            .collect(),
                    });
                }
            }
        }
    }
    (spans, resources)
}

const OK: i32 = 1;
const ERROR: i32 = 2;

/// The checks every trace destination must pass. `bad` is the failing subject's label.
fn check_traces(
    spans: &[Span],
    resources: &[HashMap<String, String>],
    subjects: &[&str],
    bad: &str,
) {
    for r in resources {
        assert_eq!(r["service.name"], "neuro-batch");
        assert_eq!(r["service.version"], env!("CARGO_PKG_VERSION"));
        assert!(
            r.contains_key("host.name") && r.contains_key("process.pid"),
            "{r:?}"
        );
        assert_eq!(
            r["deployment.environment"], "test",
            "OTEL_RESOURCE_ATTRIBUTES is applied"
        );
    }
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let roots: Vec<&Span> = spans.iter().filter(|s| s.parent.is_empty()).collect();
    assert_eq!(roots.len(), subjects.len(), "one root per subject");
    assert!(roots.iter().all(|r| r.name == "process_subject"));
    let traces: BTreeSet<&str> = roots.iter().map(|r| r.trace.as_str()).collect();
    assert_eq!(traces.len(), subjects.len(), "one trace per subject");
    let batch: BTreeSet<&str> = roots.iter().map(|r| r.attrs["batch.id"].as_str()).collect();
    assert_eq!(batch.len(), 1, "one batch id");
    let labels: BTreeSet<&str> = roots
        .iter()
        .map(|r| r.attrs["bids.subject"].as_str())
        .collect();
    assert_eq!(labels, subjects.iter().copied().collect());
    for root in &roots {
        assert_eq!(
            root.links,
            [(
                "4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
                "00f067aa0ba902b7".to_string()
            )],
            "root links to TRACEPARENT"
        );
        assert_eq!(root.attrs["subject.file_count"], "1");
        assert!(root.attrs.contains_key("process.peak_rss_mb"));
    }

    let children = |id: &str| -> Vec<&Span> {
        let mut c: Vec<&Span> = spans.iter().filter(|s| s.parent == id).collect();
        c.sort_by_key(|s| s.name.clone());
        c
    };
    let names = |v: &[&Span]| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    for root in &roots {
        let subject = root.attrs["bids.subject"].clone();
        let files = children(&root.id);
        assert_eq!(names(&files), ["process_file"]);
        let file = files[0];
        for key in [
            "file.path",
            "file.name",
            "file.size_bytes",
            "file.size_mb",
            "file.size_bucket",
            "file.format",
            "bids.suffix",
        ] {
            assert!(file.attrs.contains_key(key), "process_file has {key}");
        }
        if subject == bad {
            assert_eq!(root.status, ERROR, "ERROR propagated to process_subject");
            assert_eq!(file.status, ERROR, "ERROR propagated to process_file");
            assert!(
                file.status_message.contains("truncated"),
                "{}",
                file.status_message
            );
            let load = children(&file.id);
            assert_eq!(
                names(&load),
                ["load_file"],
                "nothing runs after a failed load"
            );
            assert_eq!(load[0].status, ERROR);
            let (_, exception) = load[0]
                .events
                .iter()
                .find(|(n, _)| n == "exception")
                .expect("exception event");
            assert_eq!(exception["exception.type"], "TruncatedFile");
            assert!(
                exception["exception.message"].contains("sub-")
                    && exception["exception.message"].contains("truncated")
            );
            continue;
        }
        assert_eq!(root.status, OK);
        assert_eq!(file.status, OK);
        let steps = children(&file.id);
        assert_eq!(
            names(&steps),
            ["load_file", "process_image", "write_output"]
        );
        let load = steps[0];
        for key in [
            "array.shape",
            "array.dtype",
            "array.voxels",
            "io.bytes_read",
        ] {
            assert!(load.attrs.contains_key(key), "load_file has {key}");
        }
        assert!(load.events.iter().any(|(n, _)| n == "decompressed"));
        assert!(steps[2].attrs.contains_key("io.bytes_written"));
        let stages = children(&steps[1].id);
        assert_eq!(
            names(&stages),
            ["bias_correction", "normalization", "skull_strip"]
        );
        for s in stages.iter().chain(&steps) {
            for key in [
                "file.size_mb",
                "file.size_bucket",
                "bids.subject",
                "thread.cpu_ms",
                "step.cpu_ms",
            ] {
                assert!(
                    s.attrs.contains_key(key) || s.name == "process_image" && key.contains("cpu"),
                    "{} lacks {key}",
                    s.name
                );
            }
            assert_eq!(s.attrs["bids.subject"], subject);
            assert_eq!(s.status, OK);
        }
        let strip = stages.iter().find(|s| s.name == "skull_strip").unwrap();
        assert!(
            strip.attrs["skull_strip.brain_volume_ml"]
                .parse::<f64>()
                .unwrap()
                > 100.0
        );
        let bias = stages.iter().find(|s| s.name == "bias_correction").unwrap();
        assert!(bias.attrs.contains_key("bias_correction.field_min"));
        // Every span of the trace reaches the root.
        for s in spans.iter().filter(|s| s.trace == root.trace) {
            let mut at = s;
            while !at.parent.is_empty() {
                at = by_id[at.parent.as_str()];
            }
            assert_eq!(at.id, root.id);
        }
    }
}

/// A synth dataset with two good subjects and one truncated .nii.gz.
fn dataset(dir: &Path) -> std::path::PathBuf {
    let bids = dir.join("bids");
    synth(
        &bids,
        &[
            "--subjects",
            "2",
            "--shape",
            "40,48,40",
            "--voxel-size",
            "3,3,3",
        ],
    );
    let good = std::fs::read(bids.join("sub-01/anat/sub-01_T1w.nii.gz")).unwrap();
    let bad = bids.join("sub-bad/anat");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("sub-bad_T1w.nii.gz"), &good[..good.len() / 2]).unwrap();
    bids
}

fn neuro_batch_run(bids: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    neuro_batch()
        .arg("run")
        .arg(bids)
        .arg(out)
        .arg("participant")
        .args(args)
        .env("TRACEPARENT", TRACEPARENT)
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .output()
        .unwrap()
}

/// Request bodies by path, as received.
type Bodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An OTLP/HTTP receiver on 127.0.0.1 that records every request body by path.
struct Receiver {
    url: String,
    bodies: Bodies,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (s, b) = (Arc::clone(&server), Arc::clone(&bodies));
        let thread = std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = Vec::new();
                request.as_reader().read_to_end(&mut body).unwrap();
                b.lock().unwrap().push((request.url().to_string(), body));
                let response = tiny_http::Response::from_data(Vec::<u8>::new()).with_header(
                    "Content-Type: application/x-protobuf"
                        .parse::<tiny_http::Header>()
                        .unwrap(),
                );
                let _ = request.respond(response);
            }
        });
        Self {
            url,
            bodies,
            server,
            thread: Some(thread),
        }
    }

    fn requests(&self, path: &str) -> Vec<Vec<u8>> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The `/v1/traces` requests, decoded.
    fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.requests("/v1/traces")
            .iter()
            .map(|b| ExportTraceServiceRequest::decode(b.as_slice()).expect("protobuf body"))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn otlp_http_receives_one_trace_per_subject_with_errors_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = dataset(tmp.path());
    let receiver = Receiver::start();
    let out = tmp.path().join("out");
    let output = neuro_batch_run(
        &bids,
        &out,
        &["--otlp-endpoint", &receiver.url, "--threads", "2"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "one file failed: {stderr}");
    assert!(!stderr.contains("not delivered"), "{stderr}");
    let requests = receiver.trace_requests();
    assert!(!requests.is_empty(), "traces arrived over OTLP/HTTP");
    let (spans, resources) = flatten(&requests);
    check_traces(&spans, &resources, &["01", "02", "bad"], "bad");
    assert!(
        !receiver.requests("/v1/metrics").is_empty(),
        "metrics arrived over OTLP/HTTP"
    );
    let trace_files: Vec<_> = files_under(&out.join("logs"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("traces-"))
        .collect();
    // The local trace file is the flight recorder: kept with OTLP too, holding every span.
    assert_eq!(
        trace_files.len(),
        1,
        "the trace file is written with OTLP too"
    );
    assert_eq!(
        trace_file_spans(&trace_files[0]).len(),
        spans.len(),
        "the file holds what the collector got"
    );
    let report = latest_report(&out);
    assert_eq!(
        report["otlp_endpoint"],
        format!("{}/v1/traces", receiver.url)
    );
    assert_eq!(report["traceparent"], TRACEPARENT);
}

#[test]
fn embedded_store_holds_the_same_traces_as_otlp_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = dataset(tmp.path());
    let out = tmp.path().join("out");
    let output = neuro_batch_run(&bids, &out, &["--log-format", "json", "-v"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report = latest_report(&out);
    let run_id = report["run_id"].as_str().unwrap();
    let file = out.join(format!("logs/traces-{run_id}.jsonl"));
    assert_eq!(report["trace_file"], file.to_str().unwrap());
    let text = std::fs::read_to_string(&file).unwrap();
    let requests: Vec<ExportTraceServiceRequest> = text
        .lines()
        .map(|line| {
            let raw: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
                .as_str()
                .unwrap();
            assert!(
                id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
                "hex ids: {id}"
            );
            serde_json::from_str(line).expect("OTLP JSON")
        })
        .collect();
    let (spans, resources) = flatten(&requests);
    check_traces(&spans, &resources, &["01", "02", "bad"], "bad");

    // JSON log lines carry the ids of the traces they belong to.
    let traces: BTreeSet<String> = spans.iter().map(|s| s.trace.clone()).collect();
    let logged: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    let error_line = logged
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("the failure is logged");
    assert!(
        traces.contains(
            error_line["trace_id"]
                .as_str()
                .expect("trace_id on the log line")
        )
    );
    assert_eq!(error_line["span_id"].as_str().unwrap().len(), 16);
}

#[test]
fn unreachable_collector_never_fails_or_blocks_the_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    synth(
        &bids,
        &[
            "--subjects",
            "2",
            "--shape",
            "32,32,32",
            "--voxel-size",
            "4,4,4",
        ],
    );
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for protocol in ["http/protobuf", "grpc"] {
        let out = tmp
            .path()
            .join(format!("out-{}", protocol.replace('/', "-")));
        let trace_file = tmp
            .path()
            .join(format!("{}.jsonl", protocol.replace('/', "-")));
        let output = neuro_batch_run(
            &bids,
            &out,
            &[
                "--otlp-endpoint",
                &format!("http://127.0.0.1:{port}"),
                "--otlp-protocol",
                protocol,
                "--trace-file",
                trace_file.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{protocol}: {stderr}");
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("spans were not delivered"))
            .collect();
        assert_eq!(
            warnings.len(),
            1,
            "{protocol}: exactly one warning: {stderr}"
        );
        assert!(
            warnings[0].contains(&format!("127.0.0.1:{port}")),
            "{}",
            warnings[0]
        );
        let (spans, _) = flatten(
            &std::fs::read_to_string(&trace_file)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            spans.iter().filter(|s| s.parent.is_empty()).count(),
            2,
            "--trace-file still gets every trace"
        );
    }
}

#[test]
fn invalid_traceparent_flag_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    synth(
        &bids,
        &[
            "--subjects",
            "1",
            "--shape",
            "24,24,24",
            "--voxel-size",
            "4,4,4",
        ],
    );
    let output = neuro_batch_run(
        &bids,
        &tmp.path().join("out"),
        &["--traceparent", "00-zz-yy-01"],
    );
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid traceparent"));
}

/// A reader that goes away (`neuro-batch run ... 2>&1 | head`, a log pipe that closed) must
/// not cost spans: writing the summary to it used to panic after the report was written and
/// before the telemetry shutdown, so the spans still queued were lost and the run exited 101.
#[test]
fn a_reader_that_goes_away_loses_no_span() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = dataset(tmp.path());
    let receiver = Receiver::start();
    let out = tmp.path().join("out");
    let bin = assert_cmd::cargo::cargo_bin("neuro-batch");
    let mut child = std::process::Command::new(bin)
        .arg("run")
        .arg(&bids)
        .arg(&out)
        .arg("participant")
        .args(["--otlp-endpoint", &receiver.url, "--format", "json"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading ends at once: every write the run makes goes to a closed pipe.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "one file failed; not a panic (101)");
    let requests = receiver.trace_requests();
    let (spans, _) = flatten(&requests);
    let trace_file = files_under(&out.join("logs"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("traces-"))
        .unwrap();
    assert_eq!(spans.len(), trace_file_spans(&trace_file).len());
    let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace.as_str()).collect();
    assert_eq!(traces.len(), 3, "one trace per subject");
}
