//! Filesystem rules every neuro-batch crate follows.
//!
//! - Writes are atomic ([`write_atomic`]): every file neuro-batch writes (volumes, sidecars,
//!   reports, span tables, pictures, scripts) goes through a temporary file in the target's
//!   directory that is renamed into place, so a reader never sees a half-written file and a
//!   crash leaves only a hidden temporary file named with [`TEMP_PREFIX`]; a later run removes
//!   those ([`remove_stale_temp_files`]).
//! - Reads open only regular files ([`open_regular`]): a FIFO, socket or device named like an
//!   input fails at once instead of blocking the reader forever.

mod atomic;
mod read;
mod stale;

pub use atomic::{temp_builder, write_atomic, write_atomic_with, write_json_atomic};
pub use read::{open_regular, read_regular, read_regular_text};
pub use stale::remove_stale_temp_files;

/// Name prefix of the temporary files: hidden, and recognisable as neuro-batch's own.
pub const TEMP_PREFIX: &str = ".neuro-batch-tmp-";
