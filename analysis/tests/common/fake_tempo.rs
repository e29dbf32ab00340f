//! Synthetic subject traces served the way Grafana Tempo serves them, in the shapes of the
//! captures (`fixtures/tempo/`): search with `select(...)` as JSON or protobuf
//! (`scale10k_search_select_tree_limit3*`), root searches (`search_traceql_roots_window.json`),
//! span tag lists (`tags_v2_scope_span.json`) and v2 traces (`trace_v2_error_subject.json`).
//! Used by the search-first tests and the scale benchmark (`benches/tempo_scale.rs`).

#![allow(dead_code)] // each test binary uses part of it

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use neuro_batch_analysis::source::{TempoSearch, WindowSpec};
use neuro_batch_analysis::{AttrValue, Span, Status};
use prost::Message as _;
use serde_json::{Value, json};

use super::replay::{Reply, Seen};

/// What the synthetic traces look like.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Subjects (one trace each).
    pub subjects: usize,
    /// Every n-th subject fails in bias_correction (0: none).
    pub fail_every: usize,
    /// Every n-th subject has this many files (more than 100 spans: a cut spanset) (0: none).
    pub many_files_every: usize,
    /// Files of those subjects.
    pub many_files: usize,
    /// First trace's start, Unix seconds.
    pub start_s: i64,
}

/// A xorshift generator: the same traces on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Builds one trace's spans in time order.
struct TraceBuilder {
    trace_id: String,
    next_id: u64,
    now: i64,
    spans: Vec<Span>,
}

impl TraceBuilder {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{:016x}", self.next_id)
    }

    /// A span of `ms` from now, under `parent`; the clock moves to its end.
    fn step(
        &mut self,
        name: &str,
        ms: f64,
        parent: &str,
        attributes: BTreeMap<String, AttrValue>,
    ) -> usize {
        let start = self.now;
        self.now += (ms * 1e6) as i64;
        let span_id = self.id();
        self.push(name, span_id, Some(parent), start, attributes)
    }

    fn push(
        &mut self,
        name: &str,
        span_id: String,
        parent: Option<&str>,
        start: i64,
        attributes: BTreeMap<String, AttrValue>,
    ) -> usize {
        self.spans.push(Span {
            trace_id: self.trace_id.clone(),
            span_id,
            parent_id: parent.map(str::to_owned),
            name: name.into(),
            service: "neuro-batch".into(),
            start_ns: start,
            end_ns: self.now,
            status: Status::Unset,
            error_message: None,
            attributes,
        });
        self.spans.len() - 1
    }
}

/// Subject traces: `process_subject` → per file `process_file` → `load_file`, `process_image` →
/// the three stages, `write_output`; attributes and durations like a real run's (skull_strip
/// grows with the file size; write_output is slow for every other subject).
pub fn subjects(shape: Shape) -> Vec<Vec<Span>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..shape.subjects)
        .map(|i| {
            let subject = format!("{:04}", i + 1);
            let failed = shape.fail_every > 0 && i % shape.fail_every == shape.fail_every - 1;
            let files = if shape.many_files_every > 0 && i % shape.many_files_every == 0 {
                shape.many_files
            } else {
                1
            };
            let t0 = (shape.start_s + (i as i64 / 100)) * 1_000_000_000 + (i as i64 % 100) * 1000;
            let mut b = TraceBuilder {
                trace_id: format!("{:032x}", (i as u128 + 1) * 0x1234_5678_9abc_def1),
                next_id: (i as u64) << 32,
                now: t0,
                spans: Vec::new(),
            };
            let root_id = b.id();
            for f in 0..files {
                let size_mb = 0.02 + 20.0 * rng.next();
                let common = BTreeMap::from([
                    ("bids.subject".to_owned(), AttrValue::Str(subject.clone())),
                    ("file.size_mb".to_owned(), AttrValue::Float(size_mb)),
                    (
                        "file.size_bucket".to_owned(),
                        AttrValue::Str(if size_mb < 1.0 { "<1MB" } else { "1-32MB" }.into()),
                    ),
                ]);
                let with = |extra: &[(&str, AttrValue)]| {
                    let mut a = common.clone();
                    a.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
                    a
                };
                let (file_id, file_start) = (b.id(), b.now);
                let voxels = (size_mb * 250_000.0) as i64;
                let ms = 1.0 + size_mb * (0.5 + rng.next());
                b.step(
                    "load_file",
                    ms,
                    &file_id,
                    with(&[("array.voxels", AttrValue::Int(voxels))]),
                );
                let (image_id, image_start) = (b.id(), b.now);
                let ms = 5.0 + size_mb * (4.0 + rng.next());
                let threshold = AttrValue::Float(100.0 * rng.next());
                b.step(
                    "skull_strip",
                    ms,
                    &image_id,
                    with(&[("skull_strip.threshold", threshold)]),
                );
                let ms = 20.0 + 30.0 * rng.next();
                let bias = b.step("bias_correction", ms, &image_id, with(&[]));
                let failed_here = failed && f == 0;
                if failed_here {
                    b.spans[bias].status = Status::Error;
                    b.spans[bias].error_message =
                        Some(format!("sub-{subject}: bias field fit diverged (NaN)"));
                } else {
                    let ms = 1.0 + rng.next();
                    b.step("normalization", ms, &image_id, with(&[]));
                }
                let image = b.push(
                    "process_image",
                    image_id,
                    Some(&file_id),
                    image_start,
                    with(&[]),
                );
                if !failed_here {
                    let ms = if i % 2 == 0 { 30.0 } else { 3.0 } * (1.0 + rng.next());
                    b.step(
                        "write_output",
                        ms,
                        &file_id,
                        with(&[("io.bytes_written", AttrValue::Int(voxels * 4))]),
                    );
                }
                let file = b.push(
                    "process_file",
                    file_id,
                    Some(&root_id),
                    file_start,
                    with(&[("file.format", AttrValue::Str("nifti-gz".into()))]),
                );
                if failed_here {
                    b.spans[image].status = Status::Error;
                    b.spans[file].status = Status::Error;
                }
            }
            let root = b.push(
                "process_subject",
                root_id,
                None,
                t0,
                BTreeMap::from([
                    ("bids.subject".to_owned(), AttrValue::Str(subject)),
                    ("batch.id".to_owned(), AttrValue::Str("run-1".into())),
                    (
                        "subject.file_count".to_owned(),
                        AttrValue::Int(files as i64),
                    ),
                ]),
            );
            if failed {
                b.spans[root].status = Status::Error;
            }
            b.spans
        })
        .collect()
}

/// The search for the subjects of `shape` (batch `run-1`), over a window that holds them all.
pub fn search(shape: Shape) -> Box<TempoSearch> {
    let last_s = shape.start_s + (shape.subjects / 100) as i64;
    Box::new(TempoSearch {
        window: WindowSpec::Between(shape.start_s - 10, last_s + 10),
        service: "neuro-batch".into(),
        root_span: "process_subject".into(),
        batch: Some(("batch.id".into(), "run-1".into())),
        query: None,
        attributes: vec!["bids.subject".into()],
        concurrency: 4,
        limit: 1000,
    })
}

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Like Tempo 3: search with select, JSON or protobuf by `Accept`.
    Current,
    /// Like a Tempo that does not know `select(...)`: 400 for such a search.
    NoSelect,
}

/// A route for [`super::replay::Replay::start`] serving `traces`.
pub fn route(traces: Arc<Vec<Vec<Span>>>, mode: Mode) -> impl Fn(&Seen) -> Reply {
    move |seen: &Seen| match seen.path.as_str() {
        "/api/search" => {
            let q = seen.query.get("q").cloned().unwrap_or_default();
            match (q.find("select("), mode) {
                (Some(_), Mode::NoSelect) => Reply {
                    status: 400,
                    content_type: Some("text/plain; charset=utf-8".into()),
                    body: b"invalid TraceQL query: parse error at line 1, col 50: syntax error: unexpected IDENTIFIER".to_vec(),
                    headers: Vec::new(),
                },
                (Some(at), Mode::Current) => {
                    let selected = selected_keys(&q[at..]);
                    let found = in_window(&traces, seen);
                    let spss: usize = seen.query.get("spss").map_or(3, |s| s.parse().unwrap());
                    if seen.accept.as_deref() == Some("application/protobuf") {
                        protobuf_search(&found, &selected, spss)
                    } else {
                        json_search(&found, &selected, spss)
                    }
                }
                (None, _) => root_search(&in_window(&traces, seen)),
            }
        }
        "/api/v2/search/tags" => {
            let keys: BTreeSet<&String> = traces
                .iter()
                .flatten()
                .flat_map(|s| s.attributes.keys())
                .collect();
            Reply::json(
                serde_json::to_vec(&json!({
                    "scopes": [{"name": "span", "tags": keys}],
                    "metrics": {"inspectedBytes": "14622"}
                }))
                .unwrap(),
            )
        }
        p if p.starts_with("/api/v2/traces/") => {
            let id = &p["/api/v2/traces/".len()..];
            match traces.iter().find(|t| t[0].trace_id == id) {
                Some(trace) => Reply::json(serde_json::to_vec(&v2_trace(trace)).unwrap()),
                None => Reply::json(br#"{"trace":{},"metrics":{}}"#.to_vec()),
            }
        }
        _ => Reply::status(404),
    }
}

/// `span.x` keys of a `select(...)`, and whether the intrinsics are asked for.
fn selected_keys(select: &str) -> Vec<String> {
    let inner = &select["select(".len()..select.rfind(')').unwrap()];
    inner
        .split(", ")
        .filter_map(|f| f.strip_prefix("span."))
        .map(|k| k.trim_matches('"').to_owned())
        .collect()
}

/// Traces starting inside [start, end], at most `limit` (Tempo's "some N traces").
fn in_window<'a>(traces: &'a [Vec<Span>], seen: &Seen) -> Vec<&'a Vec<Span>> {
    let start: i64 = seen.query["start"].parse().unwrap();
    let end: i64 = seen.query["end"].parse().unwrap();
    let limit: usize = seen.query.get("limit").map_or(20, |l| l.parse().unwrap());
    traces
        .iter()
        .filter(|t| (start..=end).contains(&(root(t).start_ns / 1_000_000_000)))
        .take(limit)
        .collect()
}

fn root(trace: &[Span]) -> &Span {
    trace.iter().find(|s| s.parent_id.is_none()).unwrap()
}

/// The trace id as search results show it: leading zeros stripped.
fn stripped(id: &str) -> &str {
    id.trim_start_matches('0')
}

/// What a search-with-select returns of one span: the selected attributes it has, its
/// parent's id, status and the resource's service name.
fn search_attributes(span: &Span, selected: &[String]) -> Vec<(String, AttrValue)> {
    let mut out: Vec<(String, AttrValue)> = selected
        .iter()
        .filter_map(|k| Some((k.clone(), span.attributes.get(k)?.clone())))
        .collect();
    out.push((
        "span:parentID".into(),
        AttrValue::Str(
            span.parent_id
                .clone()
                .unwrap_or_else(|| "0000000000000000".into()),
        ),
    ));
    out.push(("status".into(), AttrValue::Str(span.status.as_str().into())));
    out.push(("service.name".into(), AttrValue::Str(span.service.clone())));
    out
}

fn json_value(value: &AttrValue) -> Value {
    match value {
        AttrValue::Str(s) => json!({"stringValue": s}),
        AttrValue::Int(i) => json!({"intValue": i.to_string()}),
        AttrValue::Float(f) => json!({"doubleValue": f}),
        AttrValue::Bool(b) => json!({"boolValue": b}),
    }
}

fn json_attributes(list: &[(String, AttrValue)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(k, v)| json!({"key": k, "value": json_value(v)}))
            .collect(),
    )
}

/// What a search answer says of a trace whatever the query: id (leading zeros stripped), root,
/// start and duration.
fn trace_metadata(trace: &[Span]) -> serde_json::Map<String, Value> {
    let r = root(trace);
    let Value::Object(map) = json!({
        "traceID": stripped(&r.trace_id),
        "rootServiceName": r.service,
        "rootTraceName": r.name,
        "startTimeUnixNano": r.start_ns.to_string(),
        "durationMs": (r.end_ns - r.start_ns) / 1_000_000,
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

fn json_search(found: &[&Vec<Span>], selected: &[String], spss: usize) -> Reply {
    let traces: Vec<Value> = found
        .iter()
        .map(|trace| {
            let set = json!({
                "spans": trace.iter().take(spss).map(|s| json!({
                    "spanID": s.span_id,
                    "name": s.name,
                    "startTimeUnixNano": s.start_ns.to_string(),
                    "durationNanos": (s.end_ns - s.start_ns).to_string(),
                    "attributes": json_attributes(&search_attributes(s, selected)),
                })).collect::<Vec<_>>(),
                "matched": trace.len(),
            });
            let mut t = trace_metadata(trace);
            t.insert("spanSets".into(), json!([set]));
            t.insert("spanSet".into(), set);
            t.insert(
                "serviceStats".into(),
                json!({"neuro-batch": {"spanCount": trace.len()}}),
            );
            Value::Object(t)
        })
        .collect();
    Reply::json(
        serde_json::to_vec(&json!({
            "traces": traces,
            "metrics": {"inspectedBytes": "672654", "completedJobs": 1, "totalJobs": 1}
        }))
        .unwrap(),
    )
}

fn protobuf_search(found: &[&Vec<Span>], selected: &[String], spss: usize) -> Reply {
    let response = pb::SearchResponse {
        traces: found
            .iter()
            .map(|trace| {
                let r = root(trace);
                let set = pb::SpanSet {
                    spans: trace
                        .iter()
                        .take(spss)
                        .map(|s| pb::Span {
                            span_id: s.span_id.clone(),
                            name: s.name.clone(),
                            start_time_unix_nano: s.start_ns as u64,
                            duration_nanos: (s.end_ns - s.start_ns) as u64,
                            attributes: search_attributes(s, selected)
                                .into_iter()
                                .map(|(key, v)| pb::KeyValue {
                                    key,
                                    value: Some(pb::AnyValue {
                                        value: Some(match v {
                                            AttrValue::Str(s) => pb::Value::String(s),
                                            AttrValue::Bool(b) => pb::Value::Bool(b),
                                            AttrValue::Int(i) => pb::Value::Int(i),
                                            AttrValue::Float(f) => pb::Value::Double(f),
                                        }),
                                    }),
                                })
                                .collect(),
                        })
                        .collect(),
                    matched: trace.len() as u32,
                };
                pb::TraceSearchMetadata {
                    trace_id: stripped(&r.trace_id).to_owned(),
                    root_service_name: r.service.clone(),
                    root_trace_name: r.name.clone(),
                    start_time_unix_nano: r.start_ns as u64,
                    duration_ms: ((r.end_ns - r.start_ns) / 1_000_000) as u32,
                    span_set: Some(set.clone()),
                    span_sets: vec![set],
                    service_stats: [(
                        "neuro-batch".to_owned(),
                        pb::ServiceStats {
                            span_count: trace.len() as u32,
                            error_count: trace.iter().filter(|s| s.status == Status::Error).count()
                                as u32,
                        },
                    )]
                    .into(),
                }
            })
            .collect(),
    };
    Reply {
        status: 200,
        content_type: Some("application/protobuf".into()),
        body: response.encode_to_vec(),
        headers: Vec::new(),
    }
}

fn root_search(found: &[&Vec<Span>]) -> Reply {
    let traces: Vec<Value> = found
        .iter()
        .map(|trace| {
            let mut t = trace_metadata(trace);
            t.insert("spanSet".into(), json!({"spans": [], "matched": 1}));
            t.insert("spanSets".into(), json!([{"spans": [], "matched": 1}]));
            Value::Object(t)
        })
        .collect();
    Reply::json(serde_json::to_vec(&json!({"traces": traces, "metrics": {}})).unwrap())
}

fn b64(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A v2 trace body, as in `trace_v2_error_subject.json`.
fn v2_trace(trace: &[Span]) -> Value {
    let spans: Vec<Value> = trace
        .iter()
        .map(|s| {
            let attributes: Vec<(String, AttrValue)> = s
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut span = json!({
                "traceId": b64(&s.trace_id),
                "spanId": b64(&s.span_id),
                "name": s.name,
                "kind": "SPAN_KIND_INTERNAL",
                "startTimeUnixNano": s.start_ns.to_string(),
                "endTimeUnixNano": s.end_ns.to_string(),
                "attributes": json_attributes(&attributes),
            });
            if let Some(parent) = &s.parent_id {
                span["parentSpanId"] = json!(b64(parent));
            }
            if s.status == Status::Error {
                span["status"] = json!({"code": "STATUS_CODE_ERROR"});
                if let Some(message) = &s.error_message {
                    span["status"]["message"] = json!(message);
                    span["events"] = json!([{
                        "timeUnixNano": s.end_ns.to_string(),
                        "name": "exception",
                        "attributes": [
                            {"key": "exception.type", "value": {"stringValue": "Error"}},
                            {"key": "exception.message", "value": {"stringValue": message}},
                        ],
                    }]);
                }
            }
            span
        })
        .collect();
    json!({"trace": {"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "neuro-batch"}}
        ]},
        "scopeSpans": [{"scope": {"name": "neuro-batch"}, "spans": spans}],
    }]}})
}

/// `tempopb.SearchResponse` with every field the README of the captures lists (an encoder
/// written apart from the decoder under test).
mod pb {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SearchResponse {
        #[prost(message, repeated, tag = "1")]
        pub traces: Vec<TraceSearchMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TraceSearchMetadata {
        #[prost(string, tag = "1")]
        pub trace_id: String,
        #[prost(string, tag = "2")]
        pub root_service_name: String,
        #[prost(string, tag = "3")]
        pub root_trace_name: String,
        #[prost(uint64, tag = "4")]
        pub start_time_unix_nano: u64,
        #[prost(uint32, tag = "5")]
        pub duration_ms: u32,
        #[prost(message, optional, tag = "6")]
        pub span_set: Option<SpanSet>,
        #[prost(message, repeated, tag = "7")]
        pub span_sets: Vec<SpanSet>,
        #[prost(map = "string, message", tag = "8")]
        pub service_stats: HashMap<String, ServiceStats>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServiceStats {
        #[prost(uint32, tag = "1")]
        pub span_count: u32,
        #[prost(uint32, tag = "2")]
        pub error_count: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SpanSet {
        #[prost(message, repeated, tag = "1")]
        pub spans: Vec<Span>,
        #[prost(uint32, tag = "2")]
        pub matched: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(string, tag = "1")]
        pub span_id: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(uint64, tag = "3")]
        pub start_time_unix_nano: u64,
        #[prost(uint64, tag = "4")]
        pub duration_nanos: u64,
        #[prost(message, repeated, tag = "5")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(oneof = "Value", tags = "1, 2, 3, 4")]
        pub value: Option<Value>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        String(String),
        #[prost(bool, tag = "2")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        Int(i64),
        #[prost(double, tag = "4")]
        Double(f64),
    }
}
