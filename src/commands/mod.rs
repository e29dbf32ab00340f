//! The subcommands: each turns parsed arguments into work and an exit code.

mod analyze;
mod compare;
mod qc;
mod run;
mod slurm;
mod source;
mod synth;
mod trace;

use crate::bids::{self, Dataset, Discovery, Filters};
use crate::cli::{AnalysisLevel, Cli, Command, RunArgs};
use crate::error::{ExitCode, Failure};
use crate::telemetry::{LogFormat, Telemetry, TelemetryOptions};
use anyhow::anyhow;
use std::path::{Path, PathBuf};

/// Options every command shares.
#[derive(Debug, Clone, Copy)]
pub struct Globals {
    /// `-v` count.
    pub verbosity: u8,
    /// Log line format.
    pub log_format: LogFormat,
}

/// Run the command `cli` names. Each command sets up its own telemetry: `run` traces,
/// the others only log.
pub fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    let globals = Globals {
        verbosity: cli.verbose,
        log_format: cli.log_format,
    };
    match cli.command {
        Command::Run(args) => run::run(args, globals),
        Command::Slurm(args) => slurm::slurm(args, globals),
        Command::Qc(args) => logs_only(globals, || qc::qc(args)),
        Command::Analyze(args) => logs_only(globals, || analyze::analyze(args)),
        Command::Compare(args) => logs_only(globals, || compare::compare(args)),
        Command::Trace(args) => logs_only(globals, || trace::trace(args)),
        Command::Synth(args) => logs_only(globals, || synth::synth(args)),
    }
}

/// Runs a command that only logs (no traces of its own).
fn logs_only(
    globals: Globals,
    command: impl FnOnce() -> Result<ExitCode, Failure>,
) -> Result<ExitCode, Failure> {
    let telemetry = Telemetry::logs_only(globals.verbosity, globals.log_format);
    let result = command();
    telemetry.shutdown();
    result
}

/// A new run id: `<prefix>YYYYMMDDTHHMMSSZ-xxxx` (time, then 16 random bits).
fn new_run_id(prefix: &str) -> String {
    format!(
        "{prefix}{}-{:04x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        rand::random::<u16>()
    )
}

/// `path` made absolute against the working directory.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Telemetry for a command that takes `run`'s options; `default_trace_file` is where traces
/// go when no OTLP endpoint is configured (`None`: log only).
fn telemetry_for(
    run: &RunArgs,
    globals: Globals,
    default_trace_file: Option<PathBuf>,
) -> Telemetry {
    Telemetry::init(TelemetryOptions {
        verbosity: globals.verbosity,
        log_format: globals.log_format,
        otlp_endpoint: run.otlp_endpoint.clone(),
        otlp_protocol: run.otlp_protocol,
        trace_file: run.trace_file.as_deref().map(absolute),
        default_trace_file,
    })
}

/// Refuse the `group` level, open BIDS_DIR and discover the inputs `run`'s filters select,
/// logging discovery's warnings.
fn discover_inputs(run: &RunArgs) -> Result<(Dataset, Discovery), Failure> {
    if run.analysis_level == AnalysisLevel::Group {
        return Err(Failure::new(
            ExitCode::LevelNotImplemented,
            anyhow!("analysis level 'group' is not implemented; run 'participant'"),
        ));
    }
    let dataset =
        bids::open_dataset(&run.bids_dir).map_err(|e| Failure::new(ExitCode::BadDataset, e))?;
    let filters = Filters {
        participants: run.participant_label.clone(),
        sessions: run.session_label.clone(),
        suffixes: run.suffix.clone(),
    };
    let discovery =
        bids::discover(&dataset, &filters).map_err(|e| Failure::new(ExitCode::BadDataset, e))?;
    for warning in &discovery.warnings {
        tracing::warn!("{warning}");
    }
    Ok((dataset, discovery))
}
