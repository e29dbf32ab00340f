//! Loading spans for `analyze` and `trace`: from the local trace store or from Tempo.

use std::time::Duration;

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use neuro_batch_analysis::store;
use neuro_batch_analysis::tempo::{self, Retry, TempoClient, TempoError, Window};
use neuro_batch_analysis::{SourceInfo, Span};

use crate::cli::{SourceArgs, TempoQueryArgs};
use crate::error::{ExitCode, Failure};
use crate::telemetry::names;

/// Tempo's default `query_end_cutoff`: the newest traces are not searchable for this long.
const SEARCH_CUTOFF_S: i64 = 30;

/// Spans and where they came from.
pub(super) struct Loaded {
    pub spans: Vec<Span>,
    pub info: SourceInfo,
}

/// The spans of the local trace store named by `--traces`.
pub(super) fn from_store(args: &SourceArgs) -> Result<Loaded, Failure> {
    let mut files = Vec::new();
    for path in &args.traces {
        files.extend(
            store::resolve(path, args.all_runs)
                .map_err(|e| Failure::new(ExitCode::BadDataset, e))?,
        );
    }
    let read = store::read(&files).map_err(|e| Failure::new(ExitCode::BadDataset, e))?;
    let mut notes = Vec::new();
    if read.truncated_lines > 0 {
        notes.push(format!(
            "{} cut-short last line(s) ignored (a run killed while writing)",
            read.truncated_lines
        ));
    }
    let detail = read
        .files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Loaded {
        spans: read.spans,
        info: SourceInfo {
            kind: "store".into(),
            detail,
            notes,
            ..SourceInfo::default()
        },
    })
}

/// A client for `--tempo`.
pub(super) fn client(url: &str, args: &SourceArgs) -> Result<TempoClient, Failure> {
    TempoClient::new(url, Duration::from_secs(args.timeout), Retry::default())
        .map_err(|e| Failure::new(ExitCode::Unavailable, e))
}

fn tempo_failure(e: TempoError) -> Failure {
    Failure::new(ExitCode::Unavailable, e)
}

/// The subject traces in Tempo that the window and filters select, fetched whole.
pub(super) fn from_tempo(
    url: &str,
    args: &SourceArgs,
    query: &TempoQueryArgs,
) -> Result<Loaded, Failure> {
    let client = client(url, args)?;
    let now = chrono::Utc::now().timestamp();
    let window = window(query, now)?;
    let service = query
        .service
        .clone()
        .or_else(|| {
            std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| names::SERVICE_NAME.to_owned());
    let traceql = tempo::root_query(
        &service,
        names::PROCESS_SUBJECT,
        query.batch_id.as_deref().map(|b| (names::BATCH_ID, b)),
        query.query.as_deref(),
    );
    let found = tempo::find_traces(&client, &traceql, window, query.limit as usize)
        .map_err(tempo_failure)?;
    let mut notes = Vec::new();
    if window.end > now - SEARCH_CUTOFF_S {
        notes.push(format!(
            "Tempo does not search its newest ~{SEARCH_CUTOFF_S} s (query_end_cutoff): traces \
             sent in that time are not included yet"
        ));
    }
    if found.truncated {
        notes.push(format!(
            "a one-second window held more than {} traces: some are left out",
            tempo::MAX_LIMIT
        ));
    }
    if found.traces.is_empty() {
        let mut e = anyhow!(
            "Tempo at {url} has no {} traces for {traceql} between {} and {} (Unix seconds)",
            names::PROCESS_SUBJECT,
            window.start,
            window.end
        );
        if window.end > now - SEARCH_CUTOFF_S * 3 {
            e = e.context(format!(
                "nothing found; a batch that just finished becomes searchable after ~{SEARCH_CUTOFF_S} s: try again in a minute"
            ));
        }
        return Err(Failure::new(ExitCode::NoInputs, e));
    }
    let ids: Vec<String> = found.traces.iter().map(|t| t.trace_id.clone()).collect();
    let bar = ProgressBar::new(ids.len() as u64).with_style(
        ProgressStyle::with_template("fetching traces {bar:30} {pos}/{len} {per_sec}")
            .expect("valid template"),
    );
    let fetched = tempo::fetch_traces(&client, &ids, query.concurrency as usize, &|| bar.inc(1));
    bar.finish_and_clear();
    if !fetched.missing.is_empty() {
        let shown: Vec<&str> = fetched.missing.iter().take(5).map(String::as_str).collect();
        let more = fetched.missing.len() - shown.len();
        notes.push(format!(
            "{} of {} traces found by search were not returned by id (still being written, or \
             expired): {}{}",
            fetched.missing.len(),
            ids.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if let Some((id, first)) = fetched.failed.first() {
        if fetched.fetched == 0 {
            return Err(Failure::new(
                ExitCode::Unavailable,
                anyhow!("{first}").context(format!("no trace could be fetched (first: {id})")),
            ));
        }
        notes.push(format!(
            "{} traces could not be fetched after retries; first: {id}: {first}",
            fetched.failed.len()
        ));
    }
    Ok(Loaded {
        spans: fetched.spans,
        info: SourceInfo {
            kind: "tempo".into(),
            detail: format!(
                "{url} {traceql} [{}, {}] ({} searches)",
                window.start, window.end, found.requests
            ),
            notes,
            ..SourceInfo::default()
        },
    })
}

/// The search window: --start/--end, else the last --since.
fn window(query: &TempoQueryArgs, now: i64) -> Result<Window, Failure> {
    let w = match (&query.start, &query.end) {
        (Some(s), Some(e)) => Window {
            start: parse_time(s)?,
            end: parse_time(e)?,
        },
        _ => Window {
            start: now - query.since.as_secs() as i64,
            end: now,
        },
    };
    if w.end <= w.start {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow!(
                "the window must end after it starts ({} .. {})",
                w.start,
                w.end
            ),
        ));
    }
    Ok(w)
}

/// Unix seconds or RFC 3339.
fn parse_time(text: &str) -> Result<i64, Failure> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .with_context(|| format!("{text:?} is neither Unix seconds nor RFC 3339"))
        .map_err(|e| Failure::new(ExitCode::Usage, e))
}
