//! The local trace store: OTLP JSON lines that `neuro-batch run` writes under
//! `OUTPUT_DIR/logs/traces-<run id>.jsonl`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::otlp_json::{self, DecodeError};
use crate::span::Span;
use crate::table::{SpanTable, TableBuilder, TableError};

/// Folder of an output directory that holds its trace files (and run reports).
pub const LOGS_DIR: &str = "logs";
/// Trace file names: `traces-<run id>.jsonl`; run ids sort by time.
const TRACE_PREFIX: &str = "traces-";
const TRACE_EXTENSION: &str = ".jsonl";
/// Run report names: `neuro-batch-run-<run id>.json`, beside the run's trace file.
const REPORT_PREFIX: &str = "neuro-batch-run-";
const REPORT_EXTENSION: &str = ".json";

/// The run report file name of the run `run_id`.
pub fn run_report_name(run_id: &str) -> String {
    format!("{REPORT_PREFIX}{run_id}{REPORT_EXTENSION}")
}

/// Whether the file name `name` is a run report's.
pub fn is_run_report(name: &str) -> bool {
    name.starts_with(REPORT_PREFIX) && name.ends_with(REPORT_EXTENSION)
}

/// The trace file name of the run `run_id`.
pub fn trace_file_name(run_id: &str) -> String {
    format!("{TRACE_PREFIX}{run_id}{TRACE_EXTENSION}")
}

/// Whether the file name `name` is a trace file's.
pub fn is_trace_file(name: &str) -> bool {
    name.starts_with(TRACE_PREFIX) && name.ends_with(TRACE_EXTENSION)
}

/// Why the trace store could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not an OTLP JSON trace export.
    #[error("{path}:{line}: {source}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: DecodeError,
    },
    /// A directory without any trace file.
    #[error("no trace file (logs/traces-*.jsonl or traces-*.jsonl) under {0}")]
    Empty(PathBuf),
    /// The spans read could not be made into a table.
    #[error(transparent)]
    Table(#[from] TableError),
}

/// What a read of the store went through, besides the spans.
#[derive(Debug, Default)]
pub struct StoreRead {
    /// The files that were read.
    pub files: Vec<PathBuf>,
    /// Final lines cut short (a run killed while writing), ignored.
    pub truncated_lines: usize,
    /// Trace files holding fewer (or more) subject traces than their run report says the run
    /// traced: one line each.
    pub mismatches: Vec<String>,
    /// Spans written after their trace's root had been built into the table
    /// ([`read_table`] only).
    pub late_spans: usize,
}

/// The trace files a path stands for, and what the reader should know about the choice.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The files to read.
    pub files: Vec<PathBuf>,
    /// Which run was chosen over which (a resume that only skipped, other runs left out).
    pub notes: Vec<String>,
}

/// The trace files a path stands for: a file is itself; a directory (a run's output directory
/// or its `logs/`) stands for the newest run that processed something (run ids sort by time; a
/// resume that only skipped finished inputs says nothing about processing time), or for every
/// run with `all_runs`.
pub fn resolve(path: &Path, all_runs: bool) -> Result<Resolved, StoreError> {
    if !path.is_dir() {
        return Ok(Resolved {
            files: vec![path.to_path_buf()],
            notes: Vec::new(),
        });
    }
    let logs = path.join(LOGS_DIR);
    let dir = if logs.is_dir() {
        logs
    } else {
        path.to_path_buf()
    };
    let entries = std::fs::read_dir(&dir).map_err(|source| StoreError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_trace_file)
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(StoreError::Empty(path.to_path_buf()));
    }
    if all_runs {
        return Ok(Resolved {
            files,
            notes: Vec::new(),
        });
    }
    Ok(newest_that_processed(&dir, files))
}

/// Of `files` (sorted, oldest first), the newest whose run report says it processed an input;
/// the newest if none did, or none has a report.
fn newest_that_processed(dir: &Path, files: Vec<PathBuf>) -> Resolved {
    let run_id = |f: &Path| {
        f.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(TRACE_PREFIX)?.strip_suffix(TRACE_EXTENSION))
            .unwrap_or_default()
            .to_owned()
    };
    let newest = files.last().cloned().expect("at least one file");
    let found = files
        .iter()
        .rev()
        .find(|f| processed(f) != Some(false))
        .cloned();
    let resume_only = found.is_none();
    let chosen = found.unwrap_or_else(|| newest.clone());
    let mut notes = Vec::new();
    if resume_only {
        notes.push(format!(
            "run {} only skipped finished inputs (a resume): its spans say nothing about \
             processing time",
            run_id(&chosen)
        ));
    } else if chosen != newest {
        notes.push(format!(
            "the newest run, {}, only skipped finished inputs (a resume); reading {}, the newest \
             that processed something",
            run_id(&newest),
            run_id(&chosen)
        ));
    }
    if files.len() > 1 {
        notes.push(format!(
            "{} other runs' trace files are in {} (--all-runs reads them all)",
            files.len() - 1,
            dir.display()
        ));
    }
    Resolved {
        files: vec![chosen],
        notes,
    }
}

/// Whether the run of `trace_file` processed (not only skipped) an input, from its report;
/// `None` without a readable report.
fn processed(trace_file: &Path) -> Option<bool> {
    #[derive(serde::Deserialize)]
    struct Report {
        counts: Counts,
    }
    #[derive(serde::Deserialize)]
    struct Counts {
        ok: usize,
        failed: usize,
    }
    let report: Report = serde_json::from_str(&report_text(trace_file)?).ok()?;
    Some(report.counts.ok + report.counts.failed > 0)
}

/// The text of the run report beside `trace_file`, if there is one.
fn report_text(trace_file: &Path) -> Option<String> {
    let name = trace_file.file_name()?.to_str()?;
    let run_id = name
        .strip_prefix(TRACE_PREFIX)?
        .strip_suffix(TRACE_EXTENSION)?;
    let report = trace_file.with_file_name(run_report_name(run_id));
    neuro_batch_fsutil::read_regular_text(&report, 1 << 30).ok()
}

/// Lines decoded together (in parallel): the text held at once, besides the spans.
const CHUNK_BYTES: usize = 8 << 20;

/// Reads every span of the given trace files and hands them to `sink` a chunk of lines at a
/// time, in file order. Each chunk is decoded in parallel, so the text held at once stays small
/// (a few MB) whatever the file's size; what accumulates is up to `sink`.
pub fn read(
    files: &[PathBuf],
    sink: &mut dyn FnMut(Vec<Span>) -> Result<(), StoreError>,
) -> Result<StoreRead, StoreError> {
    let mut out = StoreRead::default();
    for path in files {
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut reader =
            std::io::BufReader::new(neuro_batch_fsutil::open_regular(path).map_err(io)?);
        // The traces whose root this file holds, to hold against its run report.
        let mut rooted: HashSet<String> = HashSet::new();
        let (mut chunk, mut chunk_bytes, mut line_no) = (Vec::new(), 0, 0);
        loop {
            let mut line = Vec::new();
            let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line).map_err(io)?;
            let at_end = n == 0;
            if !at_end {
                line_no += 1;
                // A last line without its newline was cut short by a killed run.
                let complete = line.last() == Some(&b'\n');
                chunk_bytes += line.len();
                chunk.push((line_no, line, complete));
            }
            if at_end || chunk_bytes >= CHUNK_BYTES {
                let spans = decode_chunk(path, std::mem::take(&mut chunk), &mut out)?;
                rooted.extend(
                    spans
                        .iter()
                        .filter(|s| s.parent_id.is_none())
                        .map(|s| s.trace_id.clone()),
                );
                sink(spans)?;
                chunk_bytes = 0;
            }
            if at_end {
                break;
            }
        }
        out.mismatches
            .extend(check_against_report(path, rooted.len()));
        out.files.push(path.clone());
    }
    Ok(out)
}

/// Every span of the given trace files, in file order.
pub fn read_spans(files: &[PathBuf]) -> Result<(Vec<Span>, StoreRead), StoreError> {
    let mut spans = Vec::new();
    let read = read(files, &mut |chunk| {
        spans.extend(chunk);
        Ok(())
    })?;
    Ok((spans, read))
}

/// The span table of the given trace files, built as they are read: memory for the table's
/// columns and the traces still open, not for every span at once.
pub fn read_table(files: &[PathBuf]) -> Result<(SpanTable, StoreRead), StoreError> {
    let mut builder = TableBuilder::default();
    let mut read = read(files, &mut |chunk| Ok(builder.push(chunk)?))?;
    read.late_spans = builder.late_spans();
    Ok((builder.finish()?, read))
}

/// Decodes numbered lines in parallel; their spans in line order.
fn decode_chunk(
    path: &Path,
    lines: Vec<(usize, Vec<u8>, bool)>,
    out: &mut StoreRead,
) -> Result<Vec<Span>, StoreError> {
    let decoded: Vec<_> = lines
        .into_par_iter()
        .filter(|(_, line, _)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(number, line, complete)| (number, complete, otlp_json::decode(&line)))
        .collect();
    let mut spans = Vec::new();
    for (number, complete, result) in decoded {
        match result {
            Ok(decoded) => spans.extend(decoded),
            Err(_) if !complete => out.truncated_lines += 1,
            Err(source) => {
                return Err(StoreError::Line {
                    path: path.to_path_buf(),
                    line: number,
                    source,
                });
            }
        }
    }
    Ok(spans)
}

/// What the run report beside a trace file says the run traced: the subjects it traced
/// (`traces.traces`), or else all its subjects. `None` without a readable report.
fn traced_by_report(trace_file: &Path) -> Option<usize> {
    #[derive(serde::Deserialize)]
    struct Report {
        subjects: Vec<serde::de::IgnoredAny>,
        traces: Option<Traces>,
    }
    #[derive(serde::Deserialize)]
    struct Traces {
        traces: usize,
    }
    let report: Report = serde_json::from_str(&report_text(trace_file)?).ok()?;
    Some(report.traces.map_or(report.subjects.len(), |t| t.traces))
}

/// A note when a trace file holds the roots of a different number of traces than the run
/// report beside it says the run made.
fn check_against_report(path: &Path, roots: usize) -> Option<String> {
    let expected = traced_by_report(path)?;
    (roots != expected).then(|| {
        format!(
            "{} holds {} subject traces, but its run report says the run traced {expected}: \
             spans were lost, and figures from this file cover only part of the run",
            path.display(),
            roots
        )
    })
}
