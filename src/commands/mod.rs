//! The subcommands: each turns parsed arguments into work and an exit code.

mod run;
mod synth;

use crate::cli::{Cli, Command};
use crate::error::{ExitCode, Failure};

/// Run the command `cli` names.
pub fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Synth(args) => synth::synth(args),
    }
}
