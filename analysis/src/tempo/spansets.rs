//! Search-first: one TraceQL search with `select(span:name, span:parentID, span:status, ...)` and
//! `spss=100` returns every span of each matching trace, with its parent id and the selected
//! attributes, so the trees need no fetch (Tempo answers in seconds what 10 000 fetches take
//! minutes for). Bodies are asked for as protobuf (`SearchResponse`, less than half the bytes
//! of JSON) and decoded one trace at a time; JSON is decoded too, for a Tempo that answers it.
//! Shapes: `../shared/tempo-api/README.md`, "Search-first at scale", and the captures in
//! `tests/fixtures/tempo/scale10k_*`.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message as _;
use serde::Deserialize;

use super::client::{TempoClient, TempoError};
use super::search::{Sliced, Window, sliced};
use crate::otlp_json::{self, Number};
use crate::span::{AttrValue, Span, Status, normalize_trace_id};

/// Spans per spanset asked for: Tempo's largest `spss`. A trace with more is cut and fetched.
pub const SPANS_PER_SET: usize = 100;

/// The key `select(span:parentID)` gives the parent's span id; a root's is all zeros.
const PARENT_KEY: &str = "span:parentID";
/// The key `select(span:status)` gives the status under (`ok`, `error`, `unset`).
const STATUS_KEY: &str = "status";
/// The resource attribute a `resource.service.name` filter adds to every span.
const SERVICE_KEY: &str = "service.name";

/// One trace as a search-with-select returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchedTrace {
    /// 32-hex trace id.
    pub trace_id: String,
    /// Trace start, ns since the epoch.
    pub start_ns: i64,
    /// The spans returned, with parent ids and the selected attributes.
    pub spans: Vec<Span>,
    /// Tempo matched more spans than it returned (`matched` > spans, or fewer spans than the
    /// service's span count): the trace must be fetched whole.
    pub cut: bool,
}

/// What a sliced search-with-select gathered.
#[derive(Debug, Clone, Default)]
pub struct SpansetOutcome {
    /// Distinct traces, oldest first.
    pub traces: Vec<SearchedTrace>,
    /// Search requests made.
    pub requests: usize,
    /// A one-second window still hit the largest limit: some traces may be missing.
    pub truncated: bool,
    /// Tempo answered in protobuf (else JSON).
    pub protobuf: bool,
}

/// `filter | select(span:name, span:parentID, span:status, span.<key>...)`.
pub fn select_query(filter: &str, attributes: &[String]) -> String {
    let mut fields = vec![
        "span:name".to_owned(),
        "span:parentID".to_owned(),
        "span:status".to_owned(),
    ];
    fields.extend(
        attributes
            .iter()
            .map(|k| format!("span.{}", attribute_name(k))),
    );
    format!("{filter} | select({})", fields.join(", "))
}

/// A key as TraceQL writes it after `span.`: bare when it is letters, digits, `.`, `_`, `-`;
/// else quoted.
fn attribute_name(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        key.to_owned()
    } else {
        super::search::quote(key)
    }
}

/// Span attribute keys Tempo holds for spans matching `filter` in `window`
/// (`/api/v2/search/tags?scope=span`).
pub fn span_tags(
    client: &TempoClient,
    filter: &str,
    window: Window,
) -> Result<Vec<String>, TempoError> {
    #[derive(Deserialize)]
    struct Tags {
        #[serde(default)]
        scopes: Vec<Scope>,
    }
    #[derive(Deserialize)]
    struct Scope {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }
    let query = [
        ("scope", "span".to_owned()),
        ("q", filter.to_owned()),
        ("start", window.start.to_string()),
        ("end", window.end.to_string()),
    ];
    let body = client.get("/api/v2/search/tags", &query)?;
    let tags: Tags = serde_json::from_slice(&body).map_err(|e| TempoError::Decode {
        url: format!("{}/api/v2/search/tags", client.base()),
        reason: e.to_string(),
    })?;
    Ok(tags
        .scopes
        .into_iter()
        .filter(|s| s.name == "span")
        .flat_map(|s| s.tags)
        .collect())
}

/// Runs the search-with-select `traceql` over `window`, sliced like
/// [`find_traces`](super::find_traces) when a window hits `limit`. `service` names the
/// spans' service when the answer does not.
pub fn search_spansets(
    client: &TempoClient,
    traceql: &str,
    window: Window,
    limit: usize,
    service: &str,
) -> Result<SpansetOutcome, TempoError> {
    let mut protobuf = true;
    let Sliced {
        items,
        requests,
        truncated,
    } = sliced(
        window,
        limit,
        |w, limit| {
            let (traces, pb) = search(client, traceql, w, limit, service)?;
            protobuf &= pb;
            Ok(traces)
        },
        |t: &SearchedTrace| t.trace_id.clone(),
    )?;
    let mut traces = items;
    traces.sort_by_key(|t| t.start_ns);
    Ok(SpansetOutcome {
        traces,
        requests,
        truncated,
        protobuf,
    })
}

fn search(
    client: &TempoClient,
    traceql: &str,
    w: Window,
    limit: usize,
    service: &str,
) -> Result<(Vec<SearchedTrace>, bool), TempoError> {
    let query = [
        ("q", traceql.to_owned()),
        ("limit", limit.to_string()),
        ("spss", SPANS_PER_SET.to_string()),
        ("start", w.start.to_string()),
        ("end", w.end.to_string()),
    ];
    let answer = client.get_accepting("/api/search", &query, Some("application/protobuf"))?;
    let decoded = if answer.is_protobuf() {
        decode_protobuf(&answer.body, service)
    } else {
        decode_json(&answer.body, service)
    };
    let traces = decoded.map_err(|reason| TempoError::Decode {
        url: format!("{}/api/search", client.base()),
        reason,
    })?;
    Ok((traces, answer.is_protobuf()))
}

/// A trace and its spansets, as either encoding gives them.
struct RawTrace {
    trace_id: String,
    start_ns: i64,
    sets: Vec<RawSet>,
    /// Spans of `service` in the trace (`serviceStats`), when given.
    service_spans: Option<u32>,
}

struct RawSet {
    matched: u32,
    spans: Vec<RawSpan>,
}

struct RawSpan {
    span_id: String,
    name: String,
    start_ns: i64,
    duration_ns: i64,
    attributes: BTreeMap<String, AttrValue>,
}

impl RawTrace {
    fn into_trace(self, service: &str) -> SearchedTrace {
        let trace_id = normalize_trace_id(&self.trace_id);
        let mut cut = false;
        let mut seen = HashSet::new();
        let mut spans = Vec::new();
        for set in self.sets {
            cut |= set.matched as usize > set.spans.len();
            for raw in set.spans {
                if seen.insert(raw.span_id.clone()) {
                    spans.push(span(&trace_id, service, raw));
                }
            }
        }
        cut |= self.service_spans.is_some_and(|n| n as usize > spans.len());
        SearchedTrace {
            trace_id,
            start_ns: self.start_ns,
            spans,
            cut,
        }
    }
}

/// A search span as the span model has it: `span:parentID`, `status` and `service.name` move
/// from the attributes into their fields.
fn span(trace_id: &str, service: &str, raw: RawSpan) -> Span {
    let mut attributes = raw.attributes;
    let parent_id = match attributes.remove(PARENT_KEY) {
        Some(AttrValue::Str(p)) if p.bytes().any(|b| b != b'0') => {
            Some(format!("{:0>16}", p.to_ascii_lowercase()))
        }
        _ => None,
    };
    let status = match attributes.remove(STATUS_KEY) {
        Some(AttrValue::Str(s)) if s == "error" => Status::Error,
        Some(AttrValue::Str(s)) if s == "ok" => Status::Ok,
        _ => Status::Unset,
    };
    let service = match attributes.remove(SERVICE_KEY) {
        Some(AttrValue::Str(s)) => s,
        _ => service.to_owned(),
    };
    let start_ns = raw.start_ns.max(0);
    Span {
        trace_id: trace_id.to_owned(),
        span_id: format!("{:0>16}", raw.span_id.to_ascii_lowercase()),
        parent_id,
        name: raw.name,
        service,
        start_ns,
        end_ns: start_ns.saturating_add(raw.duration_ns.max(0)),
        status,
        error_message: None,
        attributes,
    }
}

/// A JSON search answer (`{"traces":[{"traceID", "startTimeUnixNano", "spanSets", ...}]}`).
pub fn decode_json(body: &[u8], service: &str) -> Result<Vec<SearchedTrace>, String> {
    #[derive(Deserialize)]
    struct Response {
        #[serde(default)]
        traces: Vec<Trace>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Trace {
        #[serde(rename = "traceID")]
        trace_id: String,
        start_time_unix_nano: Option<Number>,
        span_set: Option<Set>,
        #[serde(default)]
        span_sets: Vec<Set>,
        #[serde(default)]
        service_stats: HashMap<String, Stats>,
    }
    #[derive(Deserialize)]
    struct Set {
        #[serde(default)]
        spans: Vec<JsonSpan>,
        #[serde(default)]
        matched: u32,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct JsonSpan {
        #[serde(rename = "spanID")]
        span_id: String,
        #[serde(default)]
        name: String,
        start_time_unix_nano: Number,
        duration_nanos: Number,
        #[serde(default)]
        attributes: Vec<otlp_json::KeyValue>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stats {
        #[serde(default)]
        span_count: u32,
    }
    let response: Response = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let time = |n: &Number| {
        n.as_i64()
            .ok_or_else(|| "a time that is not an integer".to_owned())
    };
    let mut out = Vec::with_capacity(response.traces.len());
    for t in response.traces {
        let mut sets = t.span_sets;
        if sets.is_empty() {
            sets.extend(t.span_set);
        }
        let sets = sets
            .into_iter()
            .map(|set| {
                let spans = set
                    .spans
                    .into_iter()
                    .map(|s| {
                        Ok(RawSpan {
                            start_ns: time(&s.start_time_unix_nano)?,
                            duration_ns: time(&s.duration_nanos)?,
                            span_id: s.span_id,
                            name: s.name,
                            attributes: otlp_json::attributes(s.attributes),
                        })
                    })
                    .collect::<Result<_, String>>()?;
                Ok(RawSet {
                    matched: set.matched,
                    spans,
                })
            })
            .collect::<Result<_, String>>()?;
        let raw = RawTrace {
            start_ns: t.start_time_unix_nano.as_ref().map_or(Ok(0), time)?,
            service_spans: t.service_stats.get(service).map(|s| s.span_count),
            trace_id: t.trace_id,
            sets,
        };
        out.push(raw.into_trace(service));
    }
    Ok(out)
}

/// A protobuf search answer (`tempopb.SearchResponse`), decoded one trace at a time: the
/// decoded messages of all traces never exist at once.
pub fn decode_protobuf(body: &[u8], service: &str) -> Result<Vec<SearchedTrace>, String> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (field, value) = next_field(&mut rest)?;
        if let (1, Some(message)) = (field, value) {
            let t = pb::TraceSearchMetadata::decode(message).map_err(|e| e.to_string())?;
            out.push(pb::raw(t, service).into_trace(service));
        }
    }
    Ok(out)
}

/// The next top-level field: its number and, when length-delimited, its bytes.
fn next_field<'a>(buf: &mut &'a [u8]) -> Result<(u64, Option<&'a [u8]>), String> {
    let key = varint(buf)?;
    let (field, wire) = (key >> 3, key & 7);
    let skip = |buf: &mut &'a [u8], n: usize| -> Result<&'a [u8], String> {
        if buf.len() < n {
            return Err(format!("field {field} runs past the end of the body"));
        }
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        Ok(head)
    };
    match wire {
        0 => varint(buf).map(|_| (field, None)),
        1 => skip(buf, 8).map(|_| (field, None)),
        2 => {
            let len = usize::try_from(varint(buf)?).map_err(|e| e.to_string())?;
            skip(buf, len).map(|b| (field, Some(b)))
        }
        5 => skip(buf, 4).map(|_| (field, None)),
        other => Err(format!(
            "wire type {other} of field {field} is not protobuf"
        )),
    }
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err("a varint that does not end".into())
}

/// `tempopb` messages (Tempo's `pkg/tempopb/tempo.proto`), only the fields read; OTLP's
/// `KeyValue`/`AnyValue` are wire-compatible with the ones here.
mod pb {
    use std::collections::HashMap;

    use super::{RawSet, RawSpan, RawTrace};
    use crate::span::AttrValue;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TraceSearchMetadata {
        #[prost(string, tag = "1")]
        pub trace_id: String,
        #[prost(uint64, tag = "4")]
        pub start_time_unix_nano: u64,
        #[prost(message, optional, tag = "6")]
        pub span_set: Option<SpanSet>,
        #[prost(message, repeated, tag = "7")]
        pub span_sets: Vec<SpanSet>,
        #[prost(map = "string, message", tag = "8")]
        pub service_stats: HashMap<String, ServiceStats>,
    }

    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct ServiceStats {
        #[prost(uint32, tag = "1")]
        pub span_count: u32,
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

    /// The scalar kinds; arrays, maps and bytes (5-7) are skipped as unknown fields.
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

    fn nanos(n: u64) -> i64 {
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    pub(super) fn raw(t: TraceSearchMetadata, service: &str) -> RawTrace {
        let mut sets = t.span_sets;
        if sets.is_empty() {
            sets.extend(t.span_set);
        }
        RawTrace {
            trace_id: t.trace_id,
            start_ns: nanos(t.start_time_unix_nano),
            service_spans: t.service_stats.get(service).map(|s| s.span_count),
            sets: sets
                .into_iter()
                .map(|set| RawSet {
                    matched: set.matched,
                    spans: set
                        .spans
                        .into_iter()
                        .map(|s| RawSpan {
                            span_id: s.span_id,
                            name: s.name,
                            start_ns: nanos(s.start_time_unix_nano),
                            duration_ns: nanos(s.duration_nanos),
                            attributes: s
                                .attributes
                                .into_iter()
                                .filter_map(|kv| {
                                    let value = match kv.value?.value? {
                                        Value::String(s) => AttrValue::Str(s),
                                        Value::Bool(b) => AttrValue::Bool(b),
                                        Value::Int(i) => AttrValue::Int(i),
                                        Value::Double(d) => AttrValue::Float(d),
                                    };
                                    Some((kv.key, value))
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_select_query_asks_for_the_tree_and_quotes_odd_keys() {
        assert_eq!(
            select_query(
                r#"{resource.service.name="neuro-batch"}"#,
                &["file.size_mb".into(), "odd key".into()]
            ),
            r#"{resource.service.name="neuro-batch"} | select(span:name, span:parentID, span:status, span.file.size_mb, span."odd key")"#
        );
    }

    #[test]
    fn a_cut_body_is_an_error_not_a_short_answer() {
        // Field 1, length 5, but only 2 bytes follow.
        assert!(decode_protobuf(&[0x0a, 0x05, 0x01, 0x02], "s").is_err());
        assert!(decode_protobuf(&[0x0a], "s").is_err());
        assert_eq!(decode_protobuf(&[], "s"), Ok(Vec::new()));
    }
}
