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
    AnalyzeArgs, CompareArgs, CompareFormat, CompareMetric, ReportFormat, SourceArgs, TempoArgs,
    TempoQueryArgs, TraceArgs, TraceFormat,
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

/// The analysis levels of the BIDS-Apps convention.
const LEVELS: [&str; 2] = ["participant", "group"];

/// The command line as `Cli` parses it: the BIDS-Apps form `neuro-batch BIDS_DIR OUTPUT_DIR
/// participant ...` (what containers and BIDS-App runners type) becomes `neuro-batch run ...`.
/// An analysis level before the directories is refused with the order to use.
pub fn bids_app_args(args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, String> {
    use clap::CommandFactory;
    let is_subcommand = |word: &str| {
        word == "help"
            || Cli::command()
                .get_subcommands()
                .any(|c| c.get_name() == word)
    };
    let bids_app_form = {
        let text = |i: usize| args.get(i).and_then(|a| a.to_str());
        text(1).is_some_and(|first| !first.starts_with('-') && !is_subcommand(first))
            && text(3).is_some_and(|level| LEVELS.contains(&level))
    };
    let mut args = args;
    if bids_app_form {
        args.insert(1, "run".into());
    }
    let text = |i: usize| args.get(i).and_then(|a| a.to_str());
    if text(1) == Some("run")
        && let Some(level) = [text(2), text(3)]
            .into_iter()
            .flatten()
            .find(|w| LEVELS.contains(w))
    {
        return Err(format!(
            "'{level}' is the analysis level, and it comes after the two directories: \
             neuro-batch run BIDS_DIR OUTPUT_DIR {level}"
        ));
    }
    Ok(args)
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
    /// Print a shell completion script (e.g. `neuro-batch completions bash > \
    /// ~/.local/share/bash-completion/completions/neuro-batch`).
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `neuro-batch man > ~/.local/share/man/man1/neuro-batch.1`.
    Man,
}

/// Arguments of `neuro-batch completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
