//! Decoding OTLP JSON into [`Span`]s.
//!
//! One decoder serves every source, because they all carry OTLP `ResourceSpans` but disagree on
//! the details:
//! - neuro-batch's trace store: one `{"resourceSpans":[...]}` per line, hex ids, integer enums;
//! - Tempo `/api/traces/<id>` (v1): `{"batches":[...]}`, base64 ids, enum names as strings;
//! - Tempo `/api/v2/traces/<id>`: `{"trace":{"resourceSpans":[...]}}`, and `{"trace":{}}` when
//!   the trace does not exist.
//!
//! Int64 values may be JSON strings or numbers; both are accepted.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::span::{AttrValue, Span, Status, normalize_trace_id};

/// Why an OTLP JSON document could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not OTLP-shaped JSON.
    #[error("not OTLP JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An id that is neither hex nor base64 of the right length.
    #[error("bad {kind} id {id:?}: expected {bytes} bytes as hex or base64")]
    Id {
        /// `trace` or `span`.
        kind: &'static str,
        /// The id as found.
        id: String,
        /// Expected length in bytes.
        bytes: usize,
    },
    /// A timestamp that is not a non-negative integer of nanoseconds.
    #[error("bad timestamp {0:?} (expected nanoseconds since 1970 as a non-negative integer)")]
    Time(String),
}

/// The top level of any of the accepted documents.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    resource_spans: Vec<ResourceSpans>,
    #[serde(default)]
    batches: Vec<ResourceSpans>,
    #[serde(default)]
    trace: Option<Box<Document>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default)]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<JsonSpan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    parent_span_id: String,
    #[serde(default)]
    name: String,
    start_time_unix_nano: Number,
    end_time_unix_nano: Number,
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default)]
    status: Option<JsonStatus>,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct JsonStatus {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    name: String,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
pub(crate) struct KeyValue {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: Option<AnyValue>,
}

/// OTLP `AnyValue`; exactly one field is set.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnyValue {
    string_value: Option<String>,
    int_value: Option<Number>,
    double_value: Option<Number>,
    bool_value: Option<bool>,
    array_value: Option<serde_json::Value>,
    kvlist_value: Option<serde_json::Value>,
}

/// A number that may arrive as a JSON string (int64 in OTLP JSON) or a JSON number.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Number {
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(v) => Some(*v),
            Number::Float(v) => (v.fract() == 0.0).then_some(*v as i64),
            Number::Text(s) => s.parse().ok(),
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Number::Int(v) => Some(*v as f64),
            Number::Float(v) => Some(*v),
            Number::Text(s) => s.parse().ok(),
        }
    }
}

impl AnyValue {
    pub(crate) fn into_value(self) -> Option<AttrValue> {
        if let Some(s) = self.string_value {
            return Some(AttrValue::Str(s));
        }
        if let Some(n) = self.int_value {
            return n.as_i64().map(AttrValue::Int);
        }
        if let Some(n) = self.double_value {
            return n.as_f64().map(AttrValue::Float);
        }
        if let Some(b) = self.bool_value {
            return Some(AttrValue::Bool(b));
        }
        self.array_value
            .or(self.kvlist_value)
            .map(|v| AttrValue::Str(v.to_string()))
    }
}

pub(crate) fn attributes(list: Vec<KeyValue>) -> BTreeMap<String, AttrValue> {
    list.into_iter()
        .filter_map(|kv| Some((kv.key, kv.value?.into_value()?)))
        .collect()
}

/// Decodes one document (a trace-store line or a Tempo trace body) into spans.
/// A Tempo v2 "not found" body (`{"trace":{}}`) decodes to no spans.
pub fn decode(json: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let mut doc: Document = serde_json::from_slice(json)?;
    let mut batches = std::mem::take(&mut doc.resource_spans);
    batches.append(&mut doc.batches);
    if let Some(inner) = doc.trace {
        batches.extend(inner.resource_spans);
        batches.extend(inner.batches);
    }
    let mut spans = Vec::new();
    for batch in batches {
        let resource = batch
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        let service = match resource.get("service.name") {
            Some(AttrValue::Str(s)) => s.clone(),
            _ => String::new(),
        };
        for scope in batch.scope_spans {
            for span in scope.spans {
                spans.push(convert(span, &service)?);
            }
        }
    }
    Ok(spans)
}

fn convert(span: JsonSpan, service: &str) -> Result<Span, DecodeError> {
    let trace_id = normalize_trace_id(&decode_id(&span.trace_id, 16, "trace")?);
    let span_id = decode_id(&span.span_id, 8, "span")?;
    let parent_id = match span.parent_span_id.as_str() {
        "" => None,
        id => Some(decode_id(id, 8, "span")?),
    };
    // OTLP times are unsigned nanoseconds since the epoch; a negative one is not a time (and
    // would overflow durations). An end before the start (clock skew) is taken as the start.
    let time = |n: &Number| {
        n.as_i64().filter(|t| *t >= 0).ok_or_else(|| {
            DecodeError::Time(match n {
                Number::Text(s) => s.clone(),
                Number::Int(v) => v.to_string(),
                Number::Float(v) => v.to_string(),
            })
        })
    };
    let start_ns = time(&span.start_time_unix_nano)?;
    let end_ns = time(&span.end_time_unix_nano)?.max(start_ns);
    let (status, mut error_message) = match span.status {
        Some(JsonStatus { code, message }) => (
            status_code(code.as_ref()),
            message.filter(|m| !m.is_empty()),
        ),
        None => (Status::Unset, None),
    };
    if error_message.is_none() {
        error_message = span
            .events
            .into_iter()
            .filter(|e| e.name == "exception")
            .find_map(
                |e| match attributes(e.attributes).remove("exception.message") {
                    Some(AttrValue::Str(m)) => Some(m),
                    _ => None,
                },
            );
    }
    Ok(Span {
        trace_id,
        span_id,
        parent_id,
        name: span.name,
        service: service.to_owned(),
        start_ns,
        end_ns,
        status,
        error_message,
        attributes: attributes(span.attributes),
    })
}

fn status_code(code: Option<&serde_json::Value>) -> Status {
    match code {
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(1) => Status::Ok,
            Some(2) => Status::Error,
            _ => Status::Unset,
        },
        Some(serde_json::Value::String(s)) => match s.as_str() {
            "STATUS_CODE_OK" => Status::Ok,
            "STATUS_CODE_ERROR" => Status::Error,
            _ => Status::Unset,
        },
        _ => Status::Unset,
    }
}

/// An id as lowercase hex: accepted as hex (`2 * bytes` characters) or standard base64.
fn decode_id(id: &str, bytes: usize, kind: &'static str) -> Result<String, DecodeError> {
    let bad = || DecodeError::Id {
        kind,
        id: id.to_owned(),
        bytes,
    };
    if id.len() == 2 * bytes && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(id.to_ascii_lowercase());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(id)
        .map_err(|_| bad())?;
    if raw.len() != bytes {
        return Err(bad());
    }
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_hex_ids_decode_to_the_same_hex() {
        assert_eq!(
            decode_id("vdZA+wZnGtEcgDF/o7F5nQ==", 16, "trace").unwrap(),
            "bdd640fb06671ad11c80317fa3b1799d"
        );
        assert_eq!(
            decode_id("BDD640FB06671AD11C80317FA3B1799D", 16, "trace").unwrap(),
            "bdd640fb06671ad11c80317fa3b1799d"
        );
        assert!(decode_id("not-an-id", 8, "span").is_err());
    }

    #[test]
    fn store_line_with_integer_enums_decodes() {
        let line = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
          "parentSpanId":"","name":"root","kind":1,"startTimeUnixNano":"1000000","endTimeUnixNano":"3000000",
          "attributes":[{"key":"n","value":{"intValue":"7"}},{"key":"x","value":{"doubleValue":1.5}}],
          "status":{"code":2,"message":""},
          "events":[{"name":"exception","attributes":[{"key":"exception.message","value":{"stringValue":"boom"}}]}]}]}]}]}"#;
        let spans = decode(line).unwrap();
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.service, "svc");
        assert_eq!(s.parent_id, None);
        assert_eq!(s.duration_ms(), 2.0);
        assert_eq!(s.status, Status::Error);
        assert_eq!(s.error_message.as_deref(), Some("boom"));
        assert_eq!(s.attributes["n"], AttrValue::Int(7));
        assert_eq!(s.attributes["x"], AttrValue::Float(1.5));
    }

    fn with_times(start: &str, end: &str) -> Vec<u8> {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"0102030405060708090a0b0c0d0e0f10",
            "spanId":"0102030405060708","name":"s","startTimeUnixNano":"{start}","endTimeUnixNano":"{end}"}}]}}]}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn timestamps_are_non_negative_and_an_end_before_the_start_is_a_zero_duration() {
        let max = i64::MAX.to_string();
        let min = i64::MIN.to_string();
        let span = &decode(&with_times("0", &max)).unwrap()[0];
        assert!(span.duration_ms() > 9e12, "no overflow");
        let span = &decode(&with_times("5000000", "1000000")).unwrap()[0];
        assert_eq!(
            span.duration_ms(),
            0.0,
            "clock skew: end taken as the start"
        );
        let e = decode(&with_times(&min, &max)).unwrap_err().to_string();
        assert!(e.contains("bad timestamp") && e.contains(&min), "{e}");
        assert!(decode(&with_times("-1", "5")).is_err());
        assert!(
            decode(&with_times("18446744073709551615", "5")).is_err(),
            "beyond i64"
        );
    }

    #[test]
    fn tempo_v2_not_found_is_empty() {
        assert!(decode(br#"{"trace":{},"metrics":{}}"#).unwrap().is_empty());
    }
}
