//! Exit codes and the top-level error that carries one.
//!
//! Library modules return their own `thiserror` types; the command layer wraps them in
//! [`Failure`], which pairs a message chain with the exit code a BIDS-App user expects.

use std::fmt;

/// Process exit codes, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Every selected input succeeded (or was already done).
    Success = 0,
    /// Some inputs failed; the others finished (`compare`: a regression was found).
    SomeFailed = 1,
    /// `compare` only: usage or tool error, distinct from a regression.
    CompareError = 2,
    /// The requested analysis level is not implemented (`group`).
    LevelNotImplemented = 17,
    /// The filters selected no input.
    NoInputs = 18,
    /// The command line was malformed.
    Usage = 64,
    /// A required outside program (sbatch) is missing or refused the work.
    Unavailable = 69,
    /// BIDS_DIR is missing, unreadable or not a BIDS dataset.
    BadDataset = 66,
    /// Internal error that is not the user's input.
    Software = 70,
    /// The output directory cannot be created or written.
    CannotCreateOutput = 73,
    /// The run finished but its report or trace file could not be written whole (disk full?).
    RecordsIncomplete = 74,
    /// Interrupted (Ctrl-C / SIGTERM): in-flight work was finished or abandoned cleanly.
    Interrupted = 130,
}

impl ExitCode {
    /// The numeric code handed to the operating system.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as `--help` prints it.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "every selected input succeeded (or was already done)",
            ExitCode::SomeFailed => "some inputs failed; the others finished (see the run report)",
            ExitCode::CompareError => "compare: usage or tool error",
            ExitCode::LevelNotImplemented => "analysis level 'group' is not implemented",
            ExitCode::NoInputs => "the filters selected no input",
            ExitCode::Usage => "usage error",
            ExitCode::Unavailable => "a required outside program is missing or refused the work",
            ExitCode::BadDataset => "BIDS_DIR is missing, unreadable or not a BIDS dataset",
            ExitCode::Software => "internal error",
            ExitCode::CannotCreateOutput => "OUTPUT_DIR cannot be created or written",
            ExitCode::RecordsIncomplete => {
                "the run finished, but its report or trace file could not be written whole \
                 (the summary on stderr says what is missing)"
            }
            ExitCode::Interrupted => {
                "interrupted (SIGINT or SIGTERM); finished work is kept, the report is written"
            }
        }
    }
}

/// An error that ends the command, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, with context.
    pub error: anyhow::Error,
    /// How the process should exit.
    pub exit: ExitCode,
}

impl Failure {
    /// Wrap an error with the exit code it should produce.
    pub fn new(exit: ExitCode, error: impl Into<anyhow::Error>) -> Self {
        Self {
            error: error.into(),
            exit,
        }
    }
}

impl fmt::Display for Failure {
    /// The message chain on one line, each cause once: many library errors already show their
    /// cause in their own message, so a cause whose text is already there is not repeated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            if line.contains(&text) {
                continue;
            }
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        f.write_str(&line)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::new(ExitCode::Software, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read trace.jsonl: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::other("not OTLP JSON: expected value");
        let failure = Failure::new(
            ExitCode::BadDataset,
            anyhow::Error::new(Outer { source: io }).context("analyze"),
        );
        assert_eq!(
            failure.to_string(),
            "analyze: cannot read trace.jsonl: not OTLP JSON: expected value"
        );
    }
}
