//! Where spans come from: the local trace store of a run, or Grafana Tempo's HTTP API. This
//! module owns the rules of each source (which files a directory stands for, the search
//! window and its cut-off, which traces count as missing) and says what it could not get in
//! [`SourceInfo::notes`]; the CLI only maps its flags onto a [`Source`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::span::{Span, Status, normalize_trace_id};
use crate::store::{self, StoreError, StoreRead};
use crate::table::{SpanTable, TableError};
use crate::tempo::{self, Retry, TempoClient, TempoError, Window};

/// Tempo's default `query_end_cutoff`: the newest traces are not searchable for this long.
pub const SEARCH_CUTOFF_S: i64 = 30;
/// The note for a one-second window that still hit Tempo's largest limit.
const TRUNCATED: &str = "a one-second window held more than 262144 traces (Tempo's largest \
                         limit): some are left out";

/// Trace ids listed by name in a note before "and N more".
const LISTED_IDS: usize = 5;

/// Where the spans came from, and what the reader should know about completeness.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct SourceInfo {
    /// `store`, `tempo` or `table`.
    pub kind: String,
    /// Files read, or the Tempo URL and query.
    pub detail: String,
    /// Traces analysed.
    pub traces: usize,
    /// Spans analysed.
    pub spans: usize,
    /// Anything the reader should know about completeness (missing traces, cut-offs).
    pub notes: Vec<String>,
}

/// A source of spans.
#[derive(Debug, Clone)]
pub enum Source {
    /// Trace files, or output directories standing for their newest trace file (every one
    /// with `all_runs`).
    Store {
        /// Files or directories.
        paths: Vec<PathBuf>,
        /// Every run's file of a directory, not only the newest.
        all_runs: bool,
    },
    /// Grafana Tempo, searched.
    Tempo(TempoServer, Box<TempoSearch>),
}

/// Where one trace is looked up by id.
#[derive(Debug, Clone)]
pub enum TraceSource {
    /// Trace files, or output directories (as for [`Source::Store`]).
    Store {
        /// Files or directories.
        paths: Vec<PathBuf>,
        /// Every run's file of a directory, not only the newest.
        all_runs: bool,
    },
    /// Grafana Tempo.
    Tempo(TempoServer),
}

/// Tempo's address.
#[derive(Debug, Clone)]
pub struct TempoServer {
    /// Base URL of the HTTP API.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Everything (searches, fetches, retries) ends this long after the client is made; what
    /// was not fetched by then is listed in the notes.
    pub deadline: Duration,
}

/// Which traces to take from Tempo.
#[derive(Debug, Clone)]
pub struct TempoSearch {
    /// The search window.
    pub window: WindowSpec,
    /// `service.name` of the runs.
    pub service: String,
    /// Name of the root span of each trace (a subject).
    pub root_span: String,
    /// Only traces whose root has this attribute value (key, value), e.g. one batch id.
    pub batch: Option<(String, String)>,
    /// Extra TraceQL spanset the traces must contain.
    pub query: Option<String>,
    /// Span attributes to select in the search, on top of every key Tempo lists for the
    /// window (`/api/v2/search/tags`): the keys the analysis needs even if that list fails.
    pub attributes: Vec<String>,
    /// Trace fetches in flight.
    pub concurrency: usize,
    /// Traces per search request.
    pub limit: usize,
}

/// The search window as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// The last this long, up to now.
    Last(Duration),
    /// Unix seconds, start and end.
    Between(i64, i64),
}

/// Why spans could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A trace file is missing or unreadable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Tempo could not be reached or refused.
    #[error(transparent)]
    Tempo(#[from] TempoError),
    /// The spans could not be made into a table.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The window ends before it starts.
    #[error("the window must end after it starts ({start} .. {end})")]
    Window {
        /// Start, Unix seconds.
        start: i64,
        /// End, Unix seconds.
        end: i64,
    },
    /// The source holds nothing that matches.
    #[error("{0}")]
    NotFound(String),
    /// Traces were found but not one could be fetched.
    #[error("no trace could be fetched (first: {id}): {error}")]
    NoneFetched {
        /// The first trace that failed.
        id: String,
        /// Its error.
        error: TempoError,
    },
}

/// Spans and where they came from.
#[derive(Debug)]
pub struct Loaded {
    /// Every span read.
    pub spans: Vec<Span>,
    /// The source and its notes.
    pub info: SourceInfo,
}

/// What a long load reports as it goes (traces fetched from Tempo).
pub trait Progress: Sync {
    /// `total` traces are about to be fetched.
    fn start(&self, total: usize);
    /// One more was fetched (or failed).
    fn tick(&self);
    /// Fetching is over.
    fn finish(&self);
}

/// Every span of `source`.
pub fn load(source: &Source, progress: &dyn Progress) -> Result<Loaded, SourceError> {
    match source {
        Source::Store { paths, all_runs } => from_store(paths, *all_runs),
        Source::Tempo(server, search) => from_tempo(server, search, progress),
    }
}

/// The spans of one trace, and a phrase for where they were looked for. `trace_id` is lowercase
/// hex: a whole id, one with its leading zeros stripped (as Tempo's search shows them), or, in
/// the local store, the start of one (as people copy them) when that start is unique.
pub fn load_trace(
    source: &TraceSource,
    trace_id: &str,
) -> Result<(Vec<Span>, String), SourceError> {
    let whole = normalize_trace_id(trace_id);
    match source {
        TraceSource::Tempo(server) => {
            let spans = tempo::fetch_trace(&client(server)?, &whole)?.unwrap_or_default();
            Ok((spans, format!("Tempo at {}", server.url)))
        }
        TraceSource::Store { paths, all_runs } => {
            // Only the spans of traces the id could mean are kept.
            let (files, notes) = store_files(paths, *all_runs)?;
            let mut candidates = Vec::new();
            let read = store::read(&files, &mut |chunk| {
                candidates.extend(
                    chunk
                        .into_iter()
                        .filter(|s| s.trace_id == whole || s.trace_id.starts_with(trace_id)),
                );
                Ok(())
            })?;
            let loaded = Loaded {
                spans: candidates,
                info: store_info(&read, notes),
            };
            let mut ids: Vec<&str> = loaded.spans.iter().map(|s| s.trace_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let id = match ids.as_slice() {
                [] => return Ok((Vec::new(), loaded.info.detail)),
                [one] => one.to_string(),
                _ if ids.contains(&whole.as_str()) => whole,
                many => {
                    return Err(SourceError::NotFound(format!(
                        "{trace_id} starts {} traces: {}; give more of the id",
                        many.len(),
                        list_ids(&many.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    )));
                }
            };
            let spans = loaded
                .spans
                .into_iter()
                .filter(|s| s.trace_id == id)
                .collect();
            Ok((spans, loaded.info.detail))
        }
    }
}

fn from_store(paths: &[PathBuf], all_runs: bool) -> Result<Loaded, SourceError> {
    let (files, notes) = store_files(paths, all_runs)?;
    let (spans, read) = store::read_spans(&files)?;
    Ok(Loaded {
        spans,
        info: store_info(&read, notes),
    })
}

/// The span table of `source`: from the store, built as the files are read (bounded by the
/// table, not by the decoded spans); from Tempo, built from the spans loaded.
pub fn load_table(
    source: &Source,
    progress: &dyn Progress,
) -> Result<(SpanTable, SourceInfo), SourceError> {
    match source {
        Source::Store { paths, all_runs } => {
            let (files, mut notes) = store_files(paths, *all_runs)?;
            let (table, read) = store::read_table(&files)?;
            if read.late_spans > 0 {
                notes.push(format!(
                    "{} spans were written after their trace's root: they are in the table, but \
                     their traces' self and critical-path times leave them out",
                    read.late_spans
                ));
            }
            Ok((table, store_info(&read, notes)))
        }
        Source::Tempo(..) => {
            let loaded = load(source, progress)?;
            let table = SpanTable::build(loaded.spans)?;
            Ok((table, loaded.info))
        }
    }
}

/// The trace files that `paths` stand for, and notes on the choice.
fn store_files(
    paths: &[PathBuf],
    all_runs: bool,
) -> Result<(Vec<PathBuf>, Vec<String>), SourceError> {
    let (mut files, mut notes) = (Vec::new(), Vec::new());
    for path in paths {
        let resolved = store::resolve(path, all_runs)?;
        files.extend(resolved.files);
        notes.extend(resolved.notes);
    }
    Ok((files, notes))
}

/// What a read of the store says about where its spans came from.
fn store_info(read: &StoreRead, mut notes: Vec<String>) -> SourceInfo {
    notes.extend(read.mismatches.iter().cloned());
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
    SourceInfo {
        kind: "store".into(),
        detail,
        notes,
        ..SourceInfo::default()
    }
}

fn client(server: &TempoServer) -> Result<TempoClient, TempoError> {
    TempoClient::new(
        &server.url,
        server.timeout,
        server.deadline,
        Retry::default(),
    )
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The window in Unix seconds, checked.
fn window(spec: WindowSpec, now: i64) -> Result<Window, SourceError> {
    let w = match spec {
        WindowSpec::Between(start, end) => Window { start, end },
        WindowSpec::Last(d) => Window {
            start: now - d.as_secs() as i64,
            end: now,
        },
    };
    if w.end <= w.start {
        return Err(SourceError::Window {
            start: w.start,
            end: w.end,
        });
    }
    Ok(w)
}

/// The root-span traces in Tempo that the window and filters select: search-first, else (a
/// Tempo that refuses `select`) found by a root search and fetched whole.
fn from_tempo(
    server: &TempoServer,
    t: &TempoSearch,
    progress: &dyn Progress,
) -> Result<Loaded, SourceError> {
    let client = client(server)?;
    let now = now_s();
    let window = window(t.window, now)?;
    let mut notes = Vec::new();
    if window.end > now - SEARCH_CUTOFF_S {
        notes.push(format!(
            "Tempo does not search its newest ~{SEARCH_CUTOFF_S} s (query_end_cutoff): traces \
             sent in that time are not included yet"
        ));
    }
    let mut loaded = match search_first(&client, server, t, window, now, progress) {
        Err(SourceError::Tempo(TempoError::Status { status, body, .. }))
            if status == reqwest::StatusCode::BAD_REQUEST =>
        {
            notes.push(format!(
                "Tempo refused the search with select(...) ({body}); every trace was fetched \
                 by id instead (an older Tempo; slower)"
            ));
            fetch_all(&client, server, t, window, now, progress)?
        }
        other => other?,
    };
    notes.append(&mut loaded.info.notes);
    loaded.info.notes = notes;
    Ok(loaded)
}

/// One search per window with `select(...)` returns each trace's spans with parent ids; only
/// traces that were cut, lack their root, or failed (for the exception message) are fetched.
fn search_first(
    client: &TempoClient,
    server: &TempoServer,
    t: &TempoSearch,
    window: Window,
    now: i64,
    progress: &dyn Progress,
) -> Result<Loaded, SourceError> {
    let mut filter = format!("{{resource.service.name={}}}", tempo::quote(&t.service));
    if let Some(extra) = t.query.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        filter = format!("{filter} && {extra}");
    }
    let mut notes = Vec::new();
    let mut keys = match tempo::span_tags(client, &filter, window) {
        Ok(keys) => keys,
        Err(e) => {
            notes.push(format!(
                "Tempo's attribute list failed ({e}); only the known attributes were selected"
            ));
            Vec::new()
        }
    };
    keys.extend(t.attributes.iter().cloned());
    keys.extend(t.batch.iter().map(|(k, _)| k.clone()));
    keys.sort();
    keys.dedup();
    let traceql = tempo::select_query(&filter, &keys);
    let found = tempo::search_spansets(client, &traceql, window, t.limit, &t.service)?;
    if found.truncated {
        notes.push(TRUNCATED.to_owned());
    }
    let (mut spans, mut to_fetch, mut cut) = (Vec::new(), Vec::new(), 0);
    // Failed traces as searched: kept if the fetch for their messages does not come back.
    let mut failed: std::collections::HashMap<String, Vec<Span>> = Default::default();
    let mut subjects = 0;
    for trace in found.traces {
        let root = trace.spans.iter().find(|s| s.parent_id.is_none());
        if trace.cut || root.is_none() {
            cut += 1;
            to_fetch.push(trace.trace_id);
        } else if !wanted(&trace.spans, t) {
            continue;
        } else if trace.spans.iter().any(|s| s.status == Status::Error) {
            to_fetch.push(trace.trace_id.clone());
            failed.insert(trace.trace_id, trace.spans);
        } else {
            subjects += 1;
            spans.extend(trace.spans);
        }
    }
    let mut fetches = 0;
    if !to_fetch.is_empty() {
        progress.start(to_fetch.len());
        let mut fetched =
            tempo::fetch_traces(client, &to_fetch, t.concurrency, &|| progress.tick());
        progress.finish();
        fetches = to_fetch.len();
        let mut by_trace: std::collections::HashMap<String, Vec<Span>> = Default::default();
        for span in std::mem::take(&mut fetched.spans) {
            by_trace
                .entry(span.trace_id.clone())
                .or_default()
                .push(span);
        }
        for (id, searched) in &mut failed {
            by_trace
                .entry(id.clone())
                .or_insert_with(|| std::mem::take(searched));
        }
        for trace in by_trace.into_values().filter(|spans| wanted(spans, t)) {
            subjects += 1;
            spans.extend(trace);
        }
        fetch_notes(&mut notes, fetched, to_fetch.len())?;
    }
    if subjects == 0 {
        return Err(nothing_found(&server.url, t, &traceql, window, now));
    }
    notes.push(format!(
        "search-first ({}): {subjects} traces from {} searches; {fetches} fetched by id \
         ({cut} cut at {} spans or without their root, {} failed, for the error message)",
        if found.protobuf { "protobuf" } else { "JSON" },
        found.requests,
        tempo::SPANS_PER_SET,
        failed.len(),
    ));
    Ok(Loaded {
        spans,
        info: SourceInfo {
            kind: "tempo".into(),
            detail: format!(
                "{} {traceql} [{}, {}] ({} searches, {fetches} fetches)",
                server.url, window.start, window.end, found.requests
            ),
            notes,
            ..SourceInfo::default()
        },
    })
}

/// Whether a trace's root is the root span asked for, with the batch attribute asked for.
fn wanted(spans: &[Span], t: &TempoSearch) -> bool {
    spans
        .iter()
        .find(|s| s.parent_id.is_none())
        .is_some_and(|root| {
            root.name == t.root_span
                && t.batch.as_ref().is_none_or(|(key, value)| {
                    root.attributes.get(key).map(ToString::to_string).as_deref() == Some(value)
                })
        })
}

/// The older path: a root search, then every trace fetched whole.
fn fetch_all(
    client: &TempoClient,
    server: &TempoServer,
    t: &TempoSearch,
    window: Window,
    now: i64,
    progress: &dyn Progress,
) -> Result<Loaded, SourceError> {
    let traceql = tempo::root_query(
        &t.service,
        &t.root_span,
        t.batch.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
        t.query.as_deref(),
    );
    let found = tempo::find_traces(client, &traceql, window, t.limit)?;
    let mut notes = Vec::new();
    if found.truncated {
        notes.push(TRUNCATED.to_owned());
    }
    if found.traces.is_empty() {
        return Err(nothing_found(&server.url, t, &traceql, window, now));
    }
    let ids: Vec<String> = found.traces.iter().map(|t| t.trace_id.clone()).collect();
    progress.start(ids.len());
    let mut fetched = tempo::fetch_traces(client, &ids, t.concurrency, &|| progress.tick());
    progress.finish();
    let spans = std::mem::take(&mut fetched.spans);
    fetch_notes(&mut notes, fetched, ids.len())?;
    Ok(Loaded {
        spans,
        info: SourceInfo {
            kind: "tempo".into(),
            detail: format!(
                "{} {traceql} [{}, {}] ({} searches)",
                server.url, window.start, window.end, found.requests
            ),
            notes,
            ..SourceInfo::default()
        },
    })
}

/// Notes on traces a fetch did not get; an error when not one of them came.
fn fetch_notes(
    notes: &mut Vec<String>,
    fetched: tempo::FetchOutcome,
    asked: usize,
) -> Result<(), SourceError> {
    if !fetched.missing.is_empty() {
        notes.push(format!(
            "{} of {asked} traces found by search were not returned by id (still being \
             written, or expired): {}",
            fetched.missing.len(),
            list_ids(&fetched.missing)
        ));
    }
    let failed = fetched.failed.len();
    let ids: Vec<String> = fetched.failed.iter().map(|(id, _)| id.clone()).collect();
    if let Some((id, first)) = fetched.failed.into_iter().next() {
        if fetched.fetched == 0 {
            return Err(SourceError::NoneFetched { id, error: first });
        }
        notes.push(format!(
            "{failed} traces could not be fetched ({id}: {first}): {}",
            list_ids(&ids)
        ));
    }
    Ok(())
}

fn nothing_found(
    url: &str,
    t: &TempoSearch,
    traceql: &str,
    window: Window,
    now: i64,
) -> SourceError {
    let mut message = format!(
        "Tempo at {url} has no {} traces for {traceql} between {} and {} (Unix seconds)",
        t.root_span, window.start, window.end
    );
    if window.end > now - SEARCH_CUTOFF_S * 3 {
        message = format!(
            "nothing found; a batch that just finished becomes searchable after \
             ~{SEARCH_CUTOFF_S} s: try again in a minute: {message}"
        );
    }
    SourceError::NotFound(message)
}

/// The first few ids, then how many more.
fn list_ids(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(LISTED_IDS).map(String::as_str).collect();
    let more = ids.len() - shown.len();
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_must_end_after_they_start() {
        assert!(matches!(
            window(WindowSpec::Between(10, 10), 100),
            Err(SourceError::Window { .. })
        ));
        let w = window(WindowSpec::Last(Duration::from_secs(60)), 100).unwrap();
        assert_eq!((w.start, w.end), (40, 100));
    }

    #[test]
    fn the_truncation_note_names_tempos_limit() {
        assert!(TRUNCATED.contains(&tempo::MAX_LIMIT.to_string()));
    }

    #[test]
    fn lists_at_most_five_ids() {
        let ids: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        assert_eq!(list_ids(&ids), "0, 1, 2, 3, 4 and 2 more");
        assert_eq!(list_ids(&ids[..2]), "0, 1");
    }
}
