//! The subcommands: each turns parsed arguments into work and an exit code.

mod run;
mod slurm;
mod synth;

use crate::cli::{Cli, Command};
use crate::error::{ExitCode, Failure};
use crate::telemetry::{LogFormat, Telemetry};

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
        Command::Synth(args) => {
            let telemetry = Telemetry::logs_only(globals.verbosity, globals.log_format);
            let result = synth::synth(args);
            telemetry.shutdown();
            result
        }
    }
}
