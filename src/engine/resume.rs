//! Resume: an input is done when all its outputs exist and the preproc sidecar records the
//! same input fingerprint and stage settings as this run would use.

use crate::derivatives::OutputPaths;
use crate::stages::{Stage, StageSettings};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
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
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let modified_ns = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut head = Vec::new();
    file.take(HEAD_BYTES).read_to_end(&mut head)?;
    Ok(Fingerprint {
        size_bytes: meta.len(),
        modified_ns,
        head_sha256: hex::encode(Sha256::digest(&head)),
    })
}

/// A digest of everything that changes output values: version, stages and their parameters.
pub fn settings_digest(stages: &[Stage], settings: &StageSettings) -> String {
    let text = serde_json::to_string(&(env!("CARGO_PKG_VERSION"), stages, settings))
        .expect("settings serialize");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The provenance block stored under `NeuroBatch` in the preproc sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Provenance {
    /// Fingerprint of the input when it was processed.
    pub input_fingerprint: Fingerprint,
    /// [`settings_digest`] of the run that wrote the outputs.
    pub settings_digest: String,
}

/// Whether the outputs in `paths` are complete and were made from this input and settings.
pub fn is_complete(paths: &OutputPaths, expected: &Provenance) -> bool {
    if !paths.all().iter().all(|p| p.is_file()) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(&paths.preproc_sidecar) else {
        return false;
    };
    let Ok(sidecar) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    sidecar
        .get("NeuroBatch")
        .cloned()
        .and_then(|v| serde_json::from_value::<Provenance>(v).ok())
        .is_some_and(|found| found == *expected)
}
