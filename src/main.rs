//! The `neuro-batch` binary: parse, set up logging, dispatch, map errors to exit codes.

use clap::Parser;
use neuro_batch::cli::Cli;
use neuro_batch::commands;
use neuro_batch::error::ExitCode;
use tracing_subscriber::EnvFilter;

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
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_target(false)
        .init();
    match commands::dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code.code()),
        Err(failure) => {
            eprintln!("neuro-batch: error: {failure}");
            std::process::ExitCode::from(failure.exit.code())
        }
    }
}
