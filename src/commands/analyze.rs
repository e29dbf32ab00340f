//! `neuro-batch analyze`: where a batch's time went, and which attributes explain it.

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use neuro_batch_analysis::rank::RankOptions;
use neuro_batch_analysis::source::{self, Progress};
use neuro_batch_analysis::summary::GrafanaLinks;
use neuro_batch_analysis::{ReportOptions, render, report};

use super::{emit, no_source, source_failure};
use crate::cli::{AnalyzeArgs, ReportFormat};
use crate::error::{ExitCode, Failure};
use crate::telemetry::names;

/// Attributes that are measurements of the span itself or identifiers, not causes.
const DEFAULT_EXCLUDE: [&str; 11] = [
    "thread.*",
    "process.*",
    names::STEP_CPU_MS,
    names::FILE_HEAD_SHA256,
    names::RUN_SETTINGS_DIGEST,
    names::FILE_PATH,
    names::FILE_NAME,
    names::BATCH_ID,
    names::OUTCOME,
    "service.*",
    "error.*",
];

/// Attributes that lead their group of collinear attributes, in order of preference.
/// Among categories that split the spans alike, the protocol and scanner a person can act on
/// lead the image facts that follow from them.
const PREFER: [&str; 5] = [
    names::FILE_SIZE_MB,
    names::ARRAY_VOXELS,
    names::BIDS_ACQ,
    names::SCANNER_MODEL,
    names::IMAGE_VOXEL_MM,
];

pub(super) fn analyze(args: AnalyzeArgs) -> Result<ExitCode, Failure> {
    let source = args.source.source(&args.window).ok_or_else(no_source)?;
    let (table, info) =
        source::load_table(&source, &FetchBar::default()).map_err(source_failure)?;
    if table.is_empty() {
        return Err(Failure::new(
            ExitCode::NoInputs,
            anyhow!("no spans in {}", info.detail),
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
            buckets: vec![(names::FILE_SIZE_BUCKET.into(), names::FILE_SIZE_MB.into())],
        },
        label_attribute: args.label.clone(),
        grafana: args.grafana_url.clone().map(|url| GrafanaLinks {
            url,
            datasource: args.grafana_datasource.clone(),
        }),
        slowest: args.slowest,
    };
    let report =
        report::build(&table, info, &options).map_err(|e| Failure::new(ExitCode::Software, e))?;
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

/// A progress bar for trace fetches from Tempo.
#[derive(Default)]
pub(super) struct FetchBar(std::sync::OnceLock<ProgressBar>);

impl Progress for FetchBar {
    fn start(&self, total: usize) {
        let bar = ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template("fetching traces {bar:30} {pos}/{len} {per_sec}")
                .expect("valid template"),
        );
        let _ = self.0.set(bar);
    }
    fn tick(&self) {
        if let Some(bar) = self.0.get() {
            bar.inc(1);
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.0.get() {
            bar.finish_and_clear();
        }
    }
}

fn terminal_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}
