//! Command-line interface (BIDS-Apps conventions).

use crate::engine::shard::Shard;
use crate::stages::Stage;
use crate::synth::AxisCodes;
use crate::telemetry::{LogFormat, Protocol};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    every selected input succeeded (or was already done)
  1    some inputs failed; the others finished (see the run report)
  17   analysis level 'group' is not implemented
  18   the filters selected no input
  64   usage error
  66   BIDS_DIR is missing, unreadable or not a BIDS dataset
  73   OUTPUT_DIR cannot be created or written
  130  interrupted (Ctrl-C); finished work is kept, the report is written";

/// Preprocess whole BIDS datasets in parallel, with traces that say why a run was slow.
#[derive(Debug, Parser)]
#[command(name = "neuro-batch", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format on stderr; json adds trace_id/span_id so logs join traces.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Preprocess a BIDS dataset into BIDS-Derivatives (BIDS-App).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Write a BIDS dataset of synthetic head phantoms with ground truth.
    Synth(SynthArgs),
    /// Draw QC pictures (mid-slices with the brain-mask outline) for a finished output dir.
    Qc(QcArgs),
    /// Run `run` as a SLURM array job: one task per shard of the subjects.
    #[command(after_help = SLURM_EXIT_CODES)]
    Slurm(SlurmArgs),
    /// Rank slow spans by attribute, from the local trace store or Grafana Tempo.
    #[command(after_help = ANALYZE_EXIT_CODES)]
    Analyze(AnalyzeArgs),
    /// Print one trace as a waterfall.
    #[command(after_help = ANALYZE_EXIT_CODES)]
    Trace(TraceArgs),
    /// Compare a candidate run with a baseline, span name by span name; fail on a slowdown.
    #[command(after_help = COMPARE_EXIT_CODES)]
    Compare(CompareArgs),
}

const COMPARE_EXIT_CODES: &str = "\
Exit codes:
  0    no span name got slower by more than the minimum effect
  1    at least one regression
  2    usage or tool error (a side unreadable, Tempo unreachable, nothing in common)";

const ANALYZE_EXIT_CODES: &str = "\
Exit codes:
  0    analysed
  18   no traces found (in the window, for the filters)
  64   usage error
  66   a trace file is missing or not OTLP JSON
  69   Tempo is unreachable or answered with an error
  73   the output cannot be written";

const SLURM_EXIT_CODES: &str = "\
Exit codes: as for run, plus
  69   sbatch is missing or refused the job
With --wait: 0 when every shard reported and no input failed, 1 otherwise.";

/// Arguments of `neuro-batch slurm`: the `run` arguments its tasks get, plus the job's.
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// What each task runs (everything `run` takes; --shard is set per task).
    #[command(flatten)]
    pub run: RunArgs,
    /// Number of array tasks (shards) [default: one per subject].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tasks: Option<u32>,
    /// Run at most K tasks at once (sbatch --array=...%K).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,
    /// Extra sbatch option, repeatable (e.g. --sbatch-arg=--partition=short).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Print the sbatch script (the default).
    #[arg(long, conflicts_with = "submit")]
    pub print: bool,
    /// Submit the job with sbatch.
    #[arg(long)]
    pub submit: bool,
    /// Wait for every task (sbatch --wait), then merge the shard reports into one summary.
    #[arg(long, requires = "submit")]
    pub wait: bool,
}

/// The BIDS-Apps analysis level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalysisLevel {
    /// Process each participant.
    Participant,
    /// Summaries across participants (not implemented).
    Group,
}

/// Output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Progress bar and a summary on stderr.
    Human,
    /// The plan (with --dry-run) or the run report as JSON on stdout.
    Json,
}

/// Arguments of `neuro-batch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Root of the input BIDS dataset.
    pub bids_dir: PathBuf,
    /// Where BIDS-Derivatives outputs go (created if missing).
    pub output_dir: PathBuf,
    /// Analysis level.
    #[arg(value_enum)]
    pub analysis_level: AnalysisLevel,
    /// Subjects to process, with or without "sub-" (default: all).
    #[arg(long, num_args = 1.., value_name = "LABEL")]
    pub participant_label: Vec<String>,
    /// Sessions to process, with or without "ses-" (default: all).
    #[arg(long, num_args = 1.., value_name = "LABEL")]
    pub session_label: Vec<String>,
    /// Image suffixes to process.
    #[arg(long, num_args = 1.., default_value = "T1w")]
    pub suffix: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Memory budget in GB for volumes in flight (default: 75 % of available memory).
    #[arg(long, value_name = "GB")]
    pub mem_gb: Option<f64>,
    /// Stages to run, comma-separated (default: all, in order).
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    pub stages: Vec<Stage>,
    /// Stages to leave out, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    pub skip_stages: Vec<Stage>,
    /// Redo inputs whose outputs already exist and match.
    #[arg(long)]
    pub overwrite: bool,
    /// Also write intermediate results: the estimated bias field (desc-biasfield).
    #[arg(long)]
    pub save_intermediates: bool,
    /// Print what would be processed and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// gzip level of .nii.gz outputs (0-9).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// OTLP endpoint for traces and metrics; without a URL, the local stack of
    /// docker-compose.yml (http://localhost:4318, or :4317 with grpc)
    /// [default: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; none: traces go to the trace file].
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol [default: OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf].
    #[arg(long, value_enum)]
    pub otlp_protocol: Option<Protocol>,
    /// Also write traces as OTLP JSON lines here [default without OTLP:
    /// OUTPUT_DIR/logs/traces-<run-id>.jsonl].
    #[arg(long, value_name = "PATH")]
    pub trace_file: Option<PathBuf>,
    /// W3C traceparent of the batch this run belongs to; each subject trace links to it
    /// [default: the TRACEPARENT/TRACESTATE variables].
    #[arg(long, value_name = "TRACEPARENT")]
    pub traceparent: Option<String>,
    /// Process only shard I of N (0-based) of the label-sorted subjects
    /// [default: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX
    /// with --shard-count].
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Number of shards when the index comes from Kubernetes' JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shard_count: Option<u32>,
}

/// Arguments of `neuro-batch qc`.
#[derive(Debug, Args)]
pub struct QcArgs {
    /// A neuro-batch output directory (pictures go to OUTPUT_DIR/qc/).
    pub output_dir: PathBuf,
    /// Subjects to draw, with or without "sub-" (default: all).
    #[arg(long, num_args = 1.., value_name = "LABEL")]
    pub participant_label: Vec<String>,
}

/// Arguments of `neuro-batch synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Directory to write the dataset into.
    pub out: PathBuf,
    /// Number of subjects.
    #[arg(long, default_value_t = 4)]
    pub subjects: usize,
    /// Sessions per subject (0: no session folders).
    #[arg(long, default_value_t = 0)]
    pub sessions: usize,
    /// Volume extents X,Y,Z.
    #[arg(long, value_parser = parse_triple::<usize>, default_value = "96,112,96")]
    pub shape: [usize; 3],
    /// Voxel size in mm, X,Y,Z.
    #[arg(long, value_parser = parse_triple::<f32>, default_value = "2,2,2")]
    pub voxel_size: [f32; 3],
    /// Per-subject size variation: extents scale by a factor in [1-J, 1+J].
    #[arg(long, default_value_t = 0.0)]
    pub size_jitter: f32,
    /// Strength of the multiplicative bias field: its peak-to-peak range inside the brain
    /// (0.4 = 40 % INU, the field spans 0.8-1.2).
    #[arg(long, default_value_t = 0.3)]
    pub bias: f32,
    /// Rician noise level as a fraction of white-matter intensity.
    #[arg(long, default_value_t = 0.03)]
    pub noise: f32,
    /// Random seed (same seed, same dataset).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Grey/white contrast relative to a typical T1w (0.5 halves it).
    #[arg(long, default_value_t = 1.0)]
    pub contrast: f32,
    /// Scanner gain: white matter is about 1000 x GAIN [default: random 0.7-1.3 per subject].
    #[arg(long)]
    pub gain: Option<f32>,
    /// Voxel axis directions of the stored images, e.g. RAS, LPS, PIR.
    #[arg(long, default_value = "RAS", value_parser = AxisCodes::parse)]
    pub orientation: AxisCodes,
    /// Write uncompressed .nii instead of .nii.gz.
    #[arg(long)]
    pub no_gzip: bool,
}

/// Parse `A,B,C` into three values.
fn parse_triple<T: std::str::FromStr>(text: &str) -> Result<[T; 3], String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(format!(
            "expected three comma-separated values, got '{text}'"
        ));
    };
    let parse = |s: &str| {
        s.parse::<T>()
            .map_err(|_| format!("'{s}' is not a valid number"))
    };
    Ok([parse(a)?, parse(b)?, parse(c)?])
}

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
    /// Query Grafana Tempo's HTTP API [URL default: http://localhost:3200, the local stack].
    #[arg(long, value_name = "URL", num_args = 0..=1,
          default_missing_value = neuro_batch_analysis::DEFAULT_TEMPO_URL)]
    pub tempo: Option<String>,
    /// Per-request timeout for Tempo, seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Which traces to take from Tempo.
#[derive(Debug, Clone, Args)]
pub struct TempoQueryArgs {
    /// Search the last DURATION (e.g. 30m, 2h, 3d).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub since: std::time::Duration,
    /// Window start: Unix seconds or RFC 3339 (with --end; replaces --since).
    #[arg(long, requires = "end")]
    pub start: Option<String>,
    /// Window end: Unix seconds or RFC 3339.
    #[arg(long, requires = "start")]
    pub end: Option<String>,
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
    /// The whole report as JSON (schema neuro-batch.analyze/v1).
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
    /// Also save the span table (Arrow IPC) here, e.g. as a CI baseline for `compare`.
    #[arg(long, value_name = "FILE")]
    pub save_table: Option<PathBuf>,
    /// Findings to show (all are in --format json/csv).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Span names with fewer spans are not ranked.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(3..))]
    pub min_count: u32,
    /// Significance level for Benjamini-Hochberg-corrected p-values.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Attribute not to rank (exact key, or prefix ending in *), repeatable; added to the
    /// defaults (thread.*, process.*, identifiers).
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
}

/// Output format of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Terminal table.
    Table,
    /// GitHub-flavoured Markdown.
    Markdown,
    /// JSON (schema neuro-batch.compare/v1).
    Json,
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
    /// Grafana Tempo for batch ids [URL default: http://localhost:3200].
    #[arg(long, value_name = "URL", num_args = 0..=1,
          default_missing_value = neuro_batch_analysis::DEFAULT_TEMPO_URL)]
    pub tempo: Option<String>,
    /// Search window and filters for batch ids in Tempo (--batch-id is ignored: each side
    /// names its own).
    #[command(flatten)]
    pub window: TempoQueryArgs,
    /// Per-request timeout for Tempo, seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Significance level (Benjamini-Hochberg corrected across span names).
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Smallest slowdown that counts, in percent (e.g. 5 or 5%).
    #[arg(long, default_value = "5", value_parser = parse_percent, value_name = "PERCENT")]
    pub min_effect: f64,
    /// Compare duration per unit of this attribute (e.g. file.size_mb: ms per MB), for runs
    /// whose inputs differ.
    #[arg(long, value_name = "KEY")]
    pub normalize_by: Option<String>,
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
