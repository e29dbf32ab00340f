//! Finding traces with TraceQL search, over explicit windows, slicing a window when a search
//! hits its limit (Tempo returns *some* N traces, not the newest, and has no pagination).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::client::{TempoClient, TempoError};
use crate::otlp_json::Number;
use crate::span::normalize_trace_id;

/// Tempo's largest accepted `limit`.
pub const MAX_LIMIT: usize = 262_144;

/// A search window in integer Unix seconds (the only form `/api/search` accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// End; must be after `start`.
    pub end: i64,
}

/// A trace that a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundTrace {
    /// 32-hex trace id (Tempo strips leading zeros; they are put back).
    pub trace_id: String,
    /// Root span name, when the root has arrived.
    pub root_name: Option<String>,
    /// Trace start, ns since the epoch.
    pub start_ns: i64,
}

/// What a sliced search found.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    /// Distinct traces, oldest first.
    pub traces: Vec<FoundTrace>,
    /// Search requests made.
    pub requests: usize,
    /// A one-second window still hit the largest limit: some traces may be missing.
    pub truncated: bool,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    traces: Vec<SearchTrace>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(default)]
    root_trace_name: Option<String>,
    #[serde(default)]
    start_time_unix_nano: Option<Number>,
}

/// Runs `traceql` over `window`, `limit` traces per request; a window whose search returns
/// `limit` traces is split in two and each half searched again, down to one second (then the
/// limit is raised, up to [`MAX_LIMIT`]).
pub fn find_traces(
    client: &TempoClient,
    traceql: &str,
    window: Window,
    limit: usize,
) -> Result<SearchOutcome, TempoError> {
    let found = sliced(
        window,
        limit,
        |w, limit| search(client, traceql, w, limit),
        |t: &FoundTrace| t.trace_id.clone(),
    )?;
    let mut traces = found.items;
    traces.sort_by_key(|t| t.start_ns);
    Ok(SearchOutcome {
        traces,
        requests: found.requests,
        truncated: found.truncated,
    })
}

/// What a sliced search gathered.
pub(super) struct Sliced<T> {
    /// Distinct items (by id), in id order.
    pub items: Vec<T>,
    /// Search requests made.
    pub requests: usize,
    /// A one-second window still hit [`MAX_LIMIT`].
    pub truncated: bool,
}

/// Calls `search(window, limit)` over `window`, splitting a window whose answer has `limit`
/// items in two, down to one second (then raising the limit up to [`MAX_LIMIT`]); keeps the
/// first item of each `id`.
pub(super) fn sliced<T>(
    window: Window,
    limit: usize,
    mut search: impl FnMut(Window, usize) -> Result<Vec<T>, TempoError>,
    id: impl Fn(&T) -> String,
) -> Result<Sliced<T>, TempoError> {
    let mut found: BTreeMap<String, T> = BTreeMap::new();
    let (mut requests, mut truncated) = (0, false);
    let mut pending = vec![(window, limit.clamp(1, MAX_LIMIT))];
    while let Some((w, limit)) = pending.pop() {
        let items = search(w, limit)?;
        requests += 1;
        let full = items.len() >= limit;
        for item in items {
            found.entry(id(&item)).or_insert(item);
        }
        if !full {
            continue;
        }
        if w.end - w.start > 1 {
            let mid = w.start + (w.end - w.start) / 2;
            pending.push((
                Window {
                    start: w.start,
                    end: mid,
                },
                limit,
            ));
            pending.push((
                Window {
                    start: mid,
                    end: w.end,
                },
                limit,
            ));
        } else if limit < MAX_LIMIT {
            pending.push((w, (limit * 8).min(MAX_LIMIT)));
        } else {
            truncated = true;
        }
    }
    Ok(Sliced {
        items: found.into_values().collect(),
        requests,
        truncated,
    })
}

fn search(
    client: &TempoClient,
    traceql: &str,
    w: Window,
    limit: usize,
) -> Result<Vec<FoundTrace>, TempoError> {
    let query = [
        ("q", traceql.to_owned()),
        ("limit", limit.to_string()),
        ("spss", "1".to_owned()),
        ("start", w.start.to_string()),
        ("end", w.end.to_string()),
    ];
    let body = client.get("/api/search", &query)?;
    let response: SearchResponse =
        serde_json::from_slice(&body).map_err(|e| TempoError::Decode {
            url: format!("{}/api/search", client.base()),
            reason: e.to_string(),
        })?;
    Ok(response
        .traces
        .into_iter()
        .map(|t| FoundTrace {
            trace_id: normalize_trace_id(&t.trace_id),
            root_name: t.root_trace_name,
            start_ns: t
                .start_time_unix_nano
                .and_then(|n| n.as_i64())
                .unwrap_or_default(),
        })
        .collect())
}

/// A TraceQL string literal: quotes and backslashes escaped.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The search for root spans: `{resource.service.name="S" && name="ROOT" [&& span.batch.id="B"]}`,
/// and `&& EXTRA` (a whole spanset, e.g. `{span.file.size_mb > 10.0}`) when given.
pub fn root_query(
    service: &str,
    root: &str,
    batch: Option<(&str, &str)>,
    extra: Option<&str>,
) -> String {
    let mut q = format!(
        "{{resource.service.name={} && name={}",
        quote(service),
        quote(root)
    );
    if let Some((key, value)) = batch {
        q += &format!(" && span.{key}={}", quote(value));
    }
    q += "}";
    if let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) {
        q = format!("{q} && {extra}");
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_query_matches_the_captured_form() {
        assert_eq!(
            root_query(
                "neuro-batch",
                "process_subject",
                Some(("batch.id", "bulk-1")),
                None
            ),
            r#"{resource.service.name="neuro-batch" && name="process_subject" && span.batch.id="bulk-1"}"#
        );
        assert_eq!(
            root_query("a\"b", "r", None, Some(" {span.x > 1.0} ")),
            r#"{resource.service.name="a\"b" && name="r"} && {span.x > 1.0}"#
        );
    }
}
