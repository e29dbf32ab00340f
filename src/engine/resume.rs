//! Resume: an input is done when all its outputs exist and the preproc sidecar records the
//! same input fingerprint and stage settings as this run would use.

use crate::derivatives::OutputPaths;
use crate::derivatives::provenance::Provenance;
use crate::derivatives::sidecar::read_provenance;
use crate::stages::{Stage, StageSettings};
use sha2::{Digest, Sha256};

/// A digest of everything that changes output values: version, stages and their parameters.
pub fn settings_digest(stages: &[Stage], settings: &StageSettings) -> String {
    let text = serde_json::to_string(&(env!("CARGO_PKG_VERSION"), stages, settings))
        .expect("settings serialize");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether the outputs in `paths` are complete and were made from this input and settings.
pub fn is_complete(paths: &OutputPaths, expected: &Provenance) -> bool {
    paths.all().iter().all(|p| p.is_file())
        && read_provenance(&paths.preproc_sidecar()).is_some_and(|found| found == *expected)
}
