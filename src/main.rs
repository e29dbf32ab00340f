//! The `neuro-batch` binary: parse, dispatch, map errors to exit codes.

use clap::Parser;
use neuro_batch::cli::Cli;
use neuro_batch::commands;
use neuro_batch::error::ExitCode;

#[global_allocator]
static ALLOCATOR: neuro_batch::malloc::HugePageAlloc = neuro_batch::malloc::HugePageAlloc;

fn main() -> std::process::ExitCode {
    neuro_batch::malloc::keep_large_buffers_on_mmap();
    let args = match neuro_batch::cli::bids_app_args(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("neuro-batch: error: {e}");
            return std::process::ExitCode::from(ExitCode::Usage.code());
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `compare` promises CI scripts 0/1/2: its usage errors are 2, not 64.
            let usage = if std::env::args().nth(1).as_deref() == Some("compare") {
                ExitCode::CompareError
            } else {
                ExitCode::Usage
            };
            return if e.use_stderr() {
                std::process::ExitCode::from(usage.code())
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
