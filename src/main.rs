//! The `neuro-batch` binary: parse, dispatch, map errors to exit codes.

use clap::Parser;
use neuro_batch::cli::Cli;
use neuro_batch::commands;
use neuro_batch::error::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::from(ExitCode::Usage.code())
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code.code()),
        Err(failure) => {
            eprintln!("neuro-batch: error: {failure}");
            std::process::ExitCode::from(failure.exit.code())
        }
    }
}
