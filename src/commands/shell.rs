//! `neuro-batch completions SHELL` and `neuro-batch man`: generated from the clap definition,
//! so they always match the binary.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{ExitCode, Failure};

/// Prints the completion script for `args.shell` on stdout.
pub(super) fn completions(args: CompletionsArgs) -> Result<ExitCode, Failure> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "neuro-batch",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::Success)
}

/// Prints the man page (roff) on stdout.
pub(super) fn man() -> Result<ExitCode, Failure> {
    match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
        // `neuro-batch man | head` closes the pipe early: not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::new(
            ExitCode::Software,
            anyhow::anyhow!("man page: {e}"),
        )),
        _ => Ok(ExitCode::Success),
    }
}
