//! The subcommands. Each has one shape: its flags become an options value once (in
//! [`crate::cli`]), one library call does the work, and the result is rendered and mapped to
//! an exit code here.

mod analyze;
mod compare;
mod plan;
mod progress;
mod qc;
mod run;
mod shell;
mod slurm;
mod synth;
mod trace;

use crate::cli::{Cli, Command, RunArgs};
use crate::engine::batch::BatchError;
use crate::error::{ExitCode, Failure};
use crate::telemetry::{LogFormat, Telemetry, TelemetryOptions};
use anyhow::anyhow;
use neuro_batch_analysis::source::SourceError;
use neuro_batch_analysis::store::StoreError;
use std::io::Write;
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
        log_format: cli.log_format.into(),
    };
    match cli.command {
        Command::Run(args) => run::run(args, globals),
        Command::Slurm(args) => slurm::slurm(args, globals),
        Command::Qc(args) => logs_only(globals, || qc::qc(args)),
        Command::Analyze(args) => logs_only(globals, || analyze::analyze(args)),
        Command::Compare(args) => logs_only(globals, || compare::compare(args)),
        Command::Trace(args) => logs_only(globals, || trace::trace(args)),
        Command::Synth(args) => logs_only(globals, || synth::synth(args)),
        Command::Completions(args) => shell::completions(args),
        Command::Man => shell::man(),
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

/// Telemetry for a command that takes `run`'s options; `default_trace_file` is where traces
/// go when no OTLP endpoint is configured (`None`: log only).
fn telemetry_for(
    run: &RunArgs,
    globals: Globals,
    default_trace_file: Option<PathBuf>,
) -> Result<Telemetry, Failure> {
    let given = run
        .trace_file
        .as_deref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    Telemetry::init(TelemetryOptions {
        verbosity: globals.verbosity,
        log_format: globals.log_format,
        otlp_endpoint: run.otlp_endpoint.clone(),
        otlp_protocol: run.otlp_protocol.map(Into::into),
        traces: default_trace_file.is_some(),
        trace_file: given.or(default_trace_file).filter(|_| !run.no_trace_file),
    })
    .map_err(|e| Failure::new(ExitCode::Usage, e))
}

/// The exit code of a run that could not happen.
fn batch_failure(e: BatchError) -> Failure {
    let exit = match &e {
        BatchError::Dataset(_) | BatchError::DerivativeInput { .. } => ExitCode::BadDataset,
        BatchError::OutputInsideInput(_) => ExitCode::Usage,
        BatchError::NoInputs { .. } => ExitCode::NoInputs,
        BatchError::Output { .. } => ExitCode::CannotCreateOutput,
        BatchError::Pool(_) => ExitCode::Software,
    };
    Failure::new(exit, e)
}

/// The exit code of spans that could not be had.
fn source_failure(e: SourceError) -> Failure {
    let exit = match &e {
        SourceError::Table(_) | SourceError::Store(StoreError::Table(_)) => ExitCode::Software,
        SourceError::Store(_) => ExitCode::BadDataset,
        SourceError::Tempo(_) | SourceError::NoneFetched { .. } => ExitCode::Unavailable,
        SourceError::Window { .. } => ExitCode::Usage,
        SourceError::NotFound(_) => ExitCode::NoInputs,
    };
    Failure::new(exit, e)
}

/// Neither `--traces` nor `--tempo`.
fn no_source() -> Failure {
    Failure::new(
        ExitCode::Usage,
        anyhow!(
            "say where the traces are: --traces OUTPUT_DIR (the local trace store of a run) or \
             --tempo [URL] (Grafana Tempo, default {})",
            neuro_batch_analysis::DEFAULT_TEMPO_URL
        ),
    )
}

/// Writes to `path` atomically (temp file + rename), or to stdout.
fn emit(text: &str, path: Option<&Path>) -> Result<(), Failure> {
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            Ok(())
        }
        Some(p) => neuro_batch_fsutil::write_atomic(p, text.as_bytes()).map_err(|e| {
            Failure::new(
                ExitCode::CannotCreateOutput,
                anyhow!(e).context(format!("cannot write {}", p.display())),
            )
        }),
    }
}
