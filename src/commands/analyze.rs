//! `neuro-batch analyze`: where a batch's time went, and which attributes explain it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use neuro_batch_analysis::rank::RankOptions;
use neuro_batch_analysis::{ReportOptions, SpanTable, render, report};

use super::source::{self, Loaded};
use crate::cli::{AnalyzeArgs, ReportFormat, SourceArgs};
use crate::derivatives::write_atomic;
use crate::error::{ExitCode, Failure};
use crate::telemetry::names;

/// Attributes that are measurements of the span itself or identifiers, not causes.
const DEFAULT_EXCLUDE: [&str; 8] = [
    "thread.*",
    "process.*",
    names::FILE_PATH,
    names::FILE_NAME,
    names::BATCH_ID,
    names::OUTCOME,
    "service.*",
    "error.*",
];

/// Attributes that lead their group of collinear attributes, in order of preference.
const PREFER: [&str; 2] = [names::FILE_SIZE_MB, names::ARRAY_VOXELS];

pub(super) fn analyze(args: AnalyzeArgs) -> Result<ExitCode, Failure> {
    let loaded = load(&args.source, &args.window)?;
    let table = SpanTable::build(loaded.spans).map_err(|e| Failure::new(ExitCode::Software, e))?;
    if table.is_empty() {
        return Err(Failure::new(
            ExitCode::NoInputs,
            anyhow!("no spans in {}", loaded.info.detail),
        ));
    }
    if let Some(path) = &args.save_table {
        table
            .save(path)
            .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    }
    let options = ReportOptions {
        rank: RankOptions {
            min_count: args.min_count as usize,
            alpha: args.alpha,
            exclude: DEFAULT_EXCLUDE
                .iter()
                .map(|s| (*s).to_owned())
                .chain(args.exclude.iter().cloned())
                .collect(),
            prefer: PREFER.iter().map(|s| (*s).to_owned()).collect(),
        },
        label_attribute: args.label.clone(),
        grafana: args.grafana_url.clone(),
        slowest: args.slowest,
    };
    let report = report::build(&table, loaded.info, &options)
        .map_err(|e| Failure::new(ExitCode::Software, e))?;
    let text = match args.format {
        ReportFormat::Table => render::terminal(&report, args.top, terminal_width()),
        ReportFormat::Markdown => render::markdown(&report, args.top),
        ReportFormat::Json => {
            serde_json::to_string_pretty(&report).context("serialising the report")? + "\n"
        }
        ReportFormat::Csv => render::csv_findings(&report).context("writing CSV")?,
        ReportFormat::Html => render::html(&report, &table, args.top)
            .map_err(|e| Failure::new(ExitCode::Software, e))?,
    };
    emit(&text, args.output.as_deref())?;
    Ok(ExitCode::Success)
}

/// Spans from the source the arguments name.
pub(super) fn load(
    source_args: &SourceArgs,
    window: &crate::cli::TempoQueryArgs,
) -> Result<Loaded, Failure> {
    match (&source_args.tempo, source_args.traces.is_empty()) {
        (Some(url), _) => source::from_tempo(url, source_args, window),
        (None, false) => source::from_store(source_args),
        (None, true) => Err(no_source()),
    }
}

pub(super) fn no_source() -> Failure {
    Failure::new(
        ExitCode::Usage,
        anyhow!(
            "say where the traces are: --traces OUTPUT_DIR (the local trace store of a run) or \
             --tempo [URL] (Grafana Tempo, default {})",
            neuro_batch_analysis::DEFAULT_TEMPO_URL
        ),
    )
}

fn terminal_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}

/// Writes to `path` atomically (temp file + rename), or to stdout.
pub(super) fn emit(text: &str, path: Option<&Path>) -> Result<(), Failure> {
    let cannot = |e: std::io::Error, p: &Path| {
        Failure::new(
            ExitCode::CannotCreateOutput,
            anyhow!(e).context(format!("cannot write {}", p.display())),
        )
    };
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            Ok(())
        }
        Some(p) => write_atomic(p, text.as_bytes()).map_err(|e| cannot(e, p)),
    }
}
