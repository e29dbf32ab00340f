//! Fetching whole traces by id, several at a time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;

use super::client::{TempoClient, TempoError};
use crate::otlp_json;
use crate::span::{Span, normalize_trace_id};

/// Fetches one trace: `/api/v2/traces/<id>` (falling back to v1 on a Tempo without v2).
/// `Ok(None)` when Tempo does not have it (v2 answers 200 with an empty trace, v1 404).
pub fn fetch_trace(client: &TempoClient, trace_id: &str) -> Result<Option<Vec<Span>>, TempoError> {
    let id = normalize_trace_id(trace_id);
    let body = match client.get(&format!("/api/v2/traces/{id}"), &[]) {
        Err(TempoError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
            match client.get(&format!("/api/traces/{id}"), &[]) {
                Err(TempoError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                    return Ok(None);
                }
                other => other?,
            }
        }
        other => other?,
    };
    let spans = otlp_json::decode(&body).map_err(|e| TempoError::Decode {
        url: format!("{}/api/v2/traces/{id}", client.base()),
        reason: e.to_string(),
    })?;
    Ok((!spans.is_empty()).then_some(spans))
}

/// What fetching a list of traces gave.
#[derive(Debug, Default)]
pub struct FetchOutcome {
    /// Spans of every trace fetched.
    pub spans: Vec<Span>,
    /// Traces fetched.
    pub fetched: usize,
    /// Ids Tempo did not have.
    pub missing: Vec<String>,
    /// Ids that failed after retries, with the error.
    pub failed: Vec<(String, TempoError)>,
}

/// Fetches `ids` with `concurrency` requests in flight; `progress` is called after each.
pub fn fetch_traces(
    client: &TempoClient,
    ids: &[String],
    concurrency: usize,
    progress: &(dyn Fn() + Sync),
) -> FetchOutcome {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(FetchOutcome::default());
    std::thread::scope(|scope| {
        for _ in 0..concurrency.clamp(1, ids.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { break };
                    let result = fetch_trace(client, id);
                    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                    match result {
                        Ok(Some(spans)) => {
                            out.fetched += 1;
                            out.spans.extend(spans);
                        }
                        Ok(None) => out.missing.push(id.clone()),
                        Err(e) => out.failed.push((id.clone(), e)),
                    }
                    drop(out);
                    progress();
                }
            });
        }
    });
    let mut out = out.into_inner().unwrap_or_else(|e| e.into_inner());
    out.missing.sort();
    out.failed.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
