//! The span model every source decodes into and every analysis reads.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// One attribute value, typed as the exporter sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// `boolValue`.
    Bool(bool),
    /// `intValue` (a JSON string in OTLP JSON).
    Int(i64),
    /// `doubleValue`.
    Float(f64),
    /// `stringValue`, and arrays/maps rendered as JSON text.
    Str(String),
}

impl AttrValue {
    /// The value as a number, for ints and doubles.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Int(v) => Some(*v as f64),
            AttrValue::Float(v) => Some(*v),
            AttrValue::Bool(_) | AttrValue::Str(_) => None,
        }
    }
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => write!(f, "{v}"),
            AttrValue::Str(v) => f.write_str(v),
        }
    }
}

/// Span status, as OTLP defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not set by the instrumentation.
    #[default]
    Unset,
    /// Explicitly OK.
    Ok,
    /// Failed.
    Error,
}

impl Status {
    /// The lowercase name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

/// One span, with ids as lowercase hex (trace ids always 32 characters, left-padded).
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 32 hex characters.
    pub trace_id: String,
    /// 16 hex characters.
    pub span_id: String,
    /// The parent's span id; `None` for a root, or when the source does not say.
    pub parent_id: Option<String>,
    /// Span name.
    pub name: String,
    /// `service.name` of the resource.
    pub service: String,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// End, nanoseconds since the Unix epoch (never before `start_ns`).
    pub end_ns: i64,
    /// Status code.
    pub status: Status,
    /// The status message, or the first `exception.message` of the span.
    pub error_message: Option<String>,
    /// Span attributes, by key.
    pub attributes: BTreeMap<String, AttrValue>,
}

impl Span {
    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        (self.end_ns - self.start_ns) as f64 / 1e6
    }
}

/// The parent-child structure of one trace's spans, by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// Children of each span, in the order given.
    pub children: Vec<Vec<usize>>,
    /// Spans without a parent, or whose parent is not among the spans.
    pub roots: Vec<usize>,
}

impl Tree {
    /// Links the spans of one trace by their parent ids.
    pub fn of(spans: &[Span]) -> Tree {
        let index: HashMap<&str, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id.as_str(), i))
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        let mut roots = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            match s.parent_id.as_deref().and_then(|p| index.get(p)) {
                Some(&parent) if parent != i => children[parent].push(i),
                _ => roots.push(i),
            }
        }
        Tree { children, roots }
    }
}

/// Left-pads a hex trace id to 32 characters and lowercases it: Tempo's search strips
/// leading zeros, the exporter does not.
pub fn normalize_trace_id(id: &str) -> String {
    format!("{:0>32}", id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::normalize_trace_id;

    #[test]
    fn stripped_ids_are_padded() {
        assert_eq!(
            normalize_trace_id("90bca8707ddcc757a6cb90ebd7957b"),
            "0090bca8707ddcc757a6cb90ebd7957b"
        );
        assert_eq!(normalize_trace_id("ABC"), format!("{}abc", "0".repeat(29)));
    }
}
