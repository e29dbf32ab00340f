//! Provenance recorded in each preproc sidecar (under `NeuroBatch`): what input and which
//! settings made the outputs, so a rerun can tell finished work from stale work.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Bytes at the start of a file that are hashed (the header and then some).
const HEAD_BYTES: u64 = 64 * 1024;

/// Cheap identity of an input file: size, modification time, hash of its first 64 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Fingerprint {
    /// File size in bytes.
    pub size_bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u64,
    /// SHA-256 of the first 64 KiB, hex.
    pub head_sha256: String,
}

/// Fingerprint the file at `path`.
pub fn fingerprint(path: &Path) -> std::io::Result<Fingerprint> {
    let file = neuro_batch_fsutil::open_regular(path)?;
    let meta = file.metadata()?;
    let modified_ns = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // Streamed through a small stack buffer: a 64 KiB heap temporary per input, freed among
    // the plan's small records, would fragment the heap by that much per subject.
    let mut hasher = Sha256::new();
    std::io::copy(&mut file.take(HEAD_BYTES), &mut hasher)?;
    Ok(Fingerprint {
        size_bytes: meta.len(),
        modified_ns,
        head_sha256: hex::encode(hasher.finalize()),
    })
}

/// What made a set of outputs: the input's fingerprint and the run's settings digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Provenance {
    /// Fingerprint of the input when it was processed.
    pub input_fingerprint: Fingerprint,
    /// Digest of the version, stages and parameters of the run that wrote the outputs (one
    /// string for all of a run's inputs).
    pub settings_digest: Arc<str>,
}
