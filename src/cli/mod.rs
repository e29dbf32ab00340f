//! Command-line interface (BIDS-Apps conventions): every flag is defined here, once, and
//! mapped here onto the library's own types (the engine never sees clap types).

mod run;
mod synth;
mod traces;

pub use run::{
    AnalysisLevel, ExportFlags, Format, ProtocolArg, RunArgs, SlurmArgs, StageArg, run_command_line,
};
pub use synth::{QcArgs, SynthArgs};
pub use traces::{
    AnalyzeArgs, CompareArgs, CompareFormat, ReportFormat, SourceArgs, TempoArgs, TempoQueryArgs,
    TraceArgs,
};

use crate::error::ExitCode;
use crate::telemetry::LogFormat;
use clap::{Parser, Subcommand, ValueEnum};

/// The exit codes of `run`, from [`ExitCode::meaning`].
fn run_exit_codes() -> String {
    let codes = [
        ExitCode::Success,
        ExitCode::SomeFailed,
        ExitCode::LevelNotImplemented,
        ExitCode::NoInputs,
        ExitCode::Usage,
        ExitCode::BadDataset,
        ExitCode::CannotCreateOutput,
        ExitCode::RecordsIncomplete,
        ExitCode::Interrupted,
    ];
    let mut text = String::from("Exit codes:");
    for code in codes {
        text += &format!("\n  {:<4} {}", code.code(), code.meaning());
    }
    text
}

/// How log lines are written, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with `trace_id` and `span_id` when inside a traced span.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// Preprocess whole BIDS datasets in parallel, with traces that say why a run was slow.
#[derive(Debug, Parser)]
#[command(name = "neuro-batch", version, after_help = run_exit_codes())]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format on stderr; json adds trace_id/span_id so logs join traces.
    #[arg(long, value_enum, global = true, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Preprocess a BIDS dataset into BIDS-Derivatives (BIDS-App).
    #[command(after_help = run_exit_codes())]
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
