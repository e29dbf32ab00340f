//! BIDS datasets: entity parsing, discovery of anatomical inputs, participants.tsv, and the
//! acquisition facts of a scan's sidecar.

mod acquisition;
mod discover;
mod entities;
mod explain;
mod participants;

pub use acquisition::{Acquisition, read as read_acquisition};
pub use discover::{Dataset, Discovery, Filters, Input, Subject, discover, open_dataset};
pub use entities::{BidsName, ENTITY_ORDER};
pub use explain::nothing_found;
pub use participants::{read_participant_columns, read_participants};

use std::path::PathBuf;

/// Why a dataset cannot be used at all (maps to exit code 66).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// BIDS_DIR does not exist or is not a directory.
    #[error("{path}: BIDS directory does not exist or is not a directory")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// `dataset_description.json` is missing or unreadable.
    #[error("{path}: not a BIDS dataset: {reason}")]
    NotBids {
        /// The dataset root.
        path: PathBuf,
        /// What is wrong with `dataset_description.json`.
        reason: String,
    },
    /// Walking the tree failed (unreadable directory, symlink loop...).
    #[error("cannot scan the dataset: {0}")]
    Walk(String),
}
