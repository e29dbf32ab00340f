//! The flags of `analyze`, `trace` and `compare`, and their mapping onto the analysis
//! crate's [`Source`].

use crate::telemetry::names;
use clap::{Args, ValueEnum};
use neuro_batch_analysis::source::{Source, TempoSearch, TempoServer, TraceSource, WindowSpec};
use std::path::PathBuf;
use std::time::Duration;

/// Where spans come from: the local trace store or Grafana Tempo.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read the local trace store: a run's OUTPUT_DIR (its newest logs/traces-*.jsonl) or
    /// trace files.
    #[arg(long, num_args = 1.., value_name = "PATH", conflicts_with = "tempo")]
    pub traces: Vec<PathBuf>,
    /// With --traces OUTPUT_DIR: every run's trace file, not only the newest (e.g. the shards
    /// of a SLURM array that share an output directory).
    #[arg(long)]
    pub all_runs: bool,
    /// Grafana Tempo.
    #[command(flatten)]
    pub tempo: TempoArgs,
}

/// Grafana Tempo's address.
#[derive(Debug, Clone, Args)]
pub struct TempoArgs {
    /// Query Grafana Tempo's HTTP API [URL default: http://localhost:3200, the local stack].
    #[arg(long, value_name = "URL", num_args = 0..=1,
          default_missing_value = neuro_batch_analysis::DEFAULT_TEMPO_URL)]
    pub tempo: Option<String>,
    /// Per-request timeout for Tempo, seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Give up on Tempo after this long in all (searches, fetches and retries); traces not
    /// fetched by then are listed (e.g. 2m, 90s).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
}

/// Which traces to take from Tempo.
#[derive(Debug, Clone, Args)]
pub struct TempoQueryArgs {
    /// Search the last DURATION (e.g. 30m, 2h, 3d).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub since: std::time::Duration,
    /// Window start: Unix seconds or RFC 3339 (with --end; replaces --since).
    #[arg(long, requires = "end", value_parser = parse_time)]
    pub start: Option<i64>,
    /// Window end: Unix seconds or RFC 3339.
    #[arg(long, requires = "start", value_parser = parse_time)]
    pub end: Option<i64>,
    /// service.name of the runs [default: OTEL_SERVICE_NAME, else neuro-batch].
    #[arg(long)]
    pub service: Option<String>,
    /// Only this run (the batch.id in the run report and on every subject's root span).
    #[arg(long, value_name = "ID")]
    pub batch_id: Option<String>,
    /// Extra TraceQL spanset the traces must contain, e.g. '{span.file.size_mb > 10.0}'
    /// (write a float literal for a float attribute: Tempo compares types strictly).
    #[arg(long, value_name = "TRACEQL")]
    pub query: Option<String>,
    /// Trace fetches in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Traces per search request; a window that hits it is split and searched again.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=262_144))]
    pub limit: u32,
}

/// Output format of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Terminal tables.
    Table,
    /// GitHub-flavoured Markdown.
    Markdown,
    /// The whole report as JSON (schema neuro-batch.analyze/v2).
    Json,
    /// Every attribute finding, one row each.
    Csv,
    /// One self-contained page with plots.
    Html,
}

/// Arguments of `neuro-batch analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Where the spans come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Which traces (Tempo only).
    #[command(flatten)]
    pub window: TempoQueryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write the report here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also save the span table here (JSON, one typed array per column), e.g. as a CI
    /// baseline for `compare`.
    #[arg(long, value_name = "FILE")]
    pub save_table: Option<PathBuf>,
    /// Findings to show (all are in --format json/csv).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Span names with fewer spans are not ranked.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(3..))]
    pub min_count: u32,
    /// Significance level for Benjamini-Hochberg-corrected p-values (0 < alpha < 1).
    #[arg(long, default_value_t = 0.05, value_parser = parse_alpha)]
    pub alpha: f64,
    /// Attribute not to rank (exact key, or prefix ending in *), repeatable; added to the
    /// defaults (thread.*, process.*, step.cpu_ms, identifiers).
    #[arg(long, value_name = "KEY")]
    pub exclude: Vec<String>,
    /// Root attribute that names a trace in the lists.
    #[arg(long, default_value = "bids.subject", value_name = "KEY")]
    pub label: String,
    /// Slowest traces to list.
    #[arg(long, default_value_t = 10)]
    pub slowest: usize,
    /// Grafana base URL for trace links (e.g. http://localhost:3000).
    #[arg(long, value_name = "URL")]
    pub grafana_url: Option<String>,
    /// uid of the Tempo datasource in that Grafana.
    #[arg(
        long,
        value_name = "UID",
        default_value = "tempo",
        requires = "grafana_url"
    )]
    pub grafana_datasource: String,
}

/// Arguments of `neuro-batch trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Trace id (32 hex digits; Tempo's shortened ids are accepted).
    pub trace_id: String,
    /// Where the trace is.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Width of the time axis, columns.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(10..=400))]
    pub width: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TraceFormat::Table)]
    pub format: TraceFormat,
}

/// Output format of `trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// A waterfall: offsets, bars, durations, critical-path marks, key attributes.
    Table,
    /// Every span in tree order with offsets, self and critical-path times and attributes.
    Json,
}

/// Output format of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Terminal table.
    Table,
    /// GitHub-flavoured Markdown.
    Markdown,
    /// JSON (schema neuro-batch.compare/v3).
    Json,
}

/// What `compare` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareMetric {
    /// CPU time when both runs have it (`step.cpu_ms`), else wall time.
    Auto,
    /// CPU time of the threads that worked for each span: what other work on the machine
    /// hardly moves.
    Cpu,
    /// Wall time: also sees I/O and waiting, and every other process on the machine.
    Wall,
}

/// Arguments of `neuro-batch compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run: a span table saved with `analyze --save-table`, a trace file or a run's
    /// OUTPUT_DIR, or (with --tempo) a batch id.
    #[arg(long, value_name = "RUN")]
    pub baseline: String,
    /// The candidate run, in the same forms.
    #[arg(long, value_name = "RUN")]
    pub candidate: String,
    /// Grafana Tempo, for sides given as batch ids.
    #[command(flatten)]
    pub tempo: TempoArgs,
    /// Search window and filters for batch ids in Tempo (--batch-id is ignored: each side
    /// names its own).
    #[command(flatten)]
    pub window: TempoQueryArgs,
    /// Significance level (Benjamini-Hochberg corrected across span names; 0 < alpha < 1).
    #[arg(long, default_value_t = 0.05, value_parser = parse_alpha)]
    pub alpha: f64,
    /// Smallest slowdown that counts, in percent (e.g. 5 or 5%).
    #[arg(long, default_value = "5", value_parser = parse_percent, value_name = "PERCENT")]
    pub min_effect: f64,
    /// Compare duration per unit of this attribute (e.g. file.size_mb: ms per MB), for runs
    /// whose inputs differ.
    #[arg(long, value_name = "KEY")]
    pub normalize_by: Option<String>,
    /// What to compare: CPU time is what a busy shared CI runner leaves alone; wall time
    /// also sees I/O (the other is shown beside it).
    #[arg(long, value_enum, default_value_t = CompareMetric::Auto)]
    pub metric: CompareMetric,
    /// Exit 1 when a span is inconclusive, or every step moved together beyond the minimum
    /// effect (by default those are warnings and exit 0).
    #[arg(long)]
    pub fail_on_inconclusive: bool,
    /// Compare absolute figures. By default, when both runs processed the same subjects, each
    /// span is compared relative to the same subject's other steps, so that a busier machine,
    /// which moves every step alike, is not called a regression (the shift is reported).
    #[arg(long)]
    pub absolute: bool,
    /// Only these span names (default: every name in both runs).
    #[arg(long, num_args = 1.., value_name = "NAME")]
    pub spans: Vec<String>,
    /// Output format (with GITHUB_STEP_SUMMARY set, Markdown is also appended there).
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,
    /// Also write JUnit XML here: one test case per span name, a regression is a failure.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

/// A significance level: strictly between 0 and 1 (NaN, 0, 1 and above make every test pass or
/// none, and invert the intervals).
fn parse_alpha(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "{text:?} is not a significance level (0 < alpha < 1, e.g. 0.05)"
        ))
    }
}

/// `5`, `5%` or `12.5 %` as a fraction.
fn parse_percent(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage"))?;
    if !(0.0..1000.0).contains(&v) {
        return Err(format!("{text:?} is outside 0-1000 %"));
    }
    Ok(v / 100.0)
}

impl SourceArgs {
    /// The source these flags name, searched with `window` in Tempo; `None` when neither
    /// `--traces` nor `--tempo` was given.
    pub fn source(&self, window: &TempoQueryArgs) -> Option<Source> {
        match (self.tempo.server(), self.traces.is_empty()) {
            (Some(server), _) => Some(Source::Tempo(server, Box::new(window.search(None)))),
            (None, false) => Some(Source::Store {
                paths: self.traces.clone(),
                all_runs: self.all_runs,
            }),
            (None, true) => None,
        }
    }

    /// Where to look up one trace; `None` when neither `--traces` nor `--tempo` was given.
    pub fn trace_source(&self) -> Option<TraceSource> {
        match (self.tempo.server(), self.traces.is_empty()) {
            (Some(server), _) => Some(TraceSource::Tempo(server)),
            (None, false) => Some(TraceSource::Store {
                paths: self.traces.clone(),
                all_runs: self.all_runs,
            }),
            (None, true) => None,
        }
    }
}

impl TempoArgs {
    /// The server `--tempo` names, if given.
    pub fn server(&self) -> Option<TempoServer> {
        self.tempo.as_ref().map(|url| TempoServer {
            url: url.clone(),
            timeout: Duration::from_secs(self.timeout),
            deadline: self.deadline,
        })
    }
}

impl TempoQueryArgs {
    /// The search these flags ask for; `batch_id` replaces `--batch-id`.
    pub fn search(&self, batch_id: Option<&str>) -> TempoSearch {
        let window = match (self.start, self.end) {
            (Some(start), Some(end)) => WindowSpec::Between(start, end),
            _ => WindowSpec::Last(self.since),
        };
        let service = self
            .service
            .clone()
            .or_else(|| {
                std::env::var("OTEL_SERVICE_NAME")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| names::SERVICE_NAME.to_owned());
        TempoSearch {
            window,
            service,
            root_span: names::PROCESS_SUBJECT.to_owned(),
            batch: batch_id
                .or(self.batch_id.as_deref())
                .map(|b| (names::BATCH_ID.to_owned(), b.to_owned())),
            query: self.query.clone(),
            attributes: names::ALL_ATTRIBUTES.map(str::to_owned).to_vec(),
            concurrency: self.concurrency as usize,
            limit: self.limit as usize,
        }
    }
}

/// Unix seconds or RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| format!("{text:?} is neither Unix seconds nor RFC 3339"))
}
