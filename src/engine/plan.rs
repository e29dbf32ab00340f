//! Turning discovered subjects into jobs: output paths, memory estimates, resume decisions.

use super::RunConfig;
use super::resume::{is_complete, settings_digest};
use crate::bids::{Discovery, Input};
use crate::derivatives::provenance::{Provenance, fingerprint};
use crate::derivatives::{OutputPaths, output_paths};
use crate::stages::Stage;
use crate::volume;
use rayon::prelude::*;
use std::path::Path;

/// One input file to process.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// The input.
    pub input: Input,
    /// Where its outputs go.
    pub outputs: OutputPaths,
    /// Provenance to record (None if the file could not even be fingerprinted).
    pub provenance: Option<Provenance>,
    /// Outputs exist and match: skip unless `--overwrite`.
    pub complete: bool,
    /// Estimated peak bytes to process it (0 when the header is unreadable).
    pub estimated_bytes: u64,
}

/// One subject: the unit of scheduling.
#[derive(Debug, Clone)]
pub struct SubjectJob {
    /// Subject label.
    pub label: String,
    /// Sessions of the selected inputs.
    pub sessions: Vec<String>,
    /// Its files, processed one after another.
    pub files: Vec<FileJob>,
}

impl SubjectJob {
    /// Peak memory of the subject: its files run in sequence, so the largest one.
    pub fn estimated_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.estimated_bytes)
            .max()
            .unwrap_or(0)
    }
}

/// Plan every discovered input (headers are inspected in parallel; nothing is written).
pub fn plan(discovery: &Discovery, out_root: &Path, config: &RunConfig) -> Vec<SubjectJob> {
    let digest = settings_digest(&config.stages, &config.settings);
    let with_mask = config.runs(Stage::SkullStrip);
    let with_field = config.save_intermediates && config.runs(Stage::BiasCorrection);
    discovery
        .subjects
        .par_iter()
        .map(|subject| SubjectJob {
            label: subject.label.clone(),
            sessions: subject.sessions.clone(),
            files: subject
                .inputs
                .iter()
                .map(|input| plan_file(input, out_root, with_mask, with_field, &digest))
                .collect(),
        })
        .collect()
}

fn plan_file(
    input: &Input,
    out_root: &Path,
    with_mask: bool,
    with_field: bool,
    digest: &str,
) -> FileJob {
    let outputs = output_paths(out_root, input, with_mask, with_field);
    let provenance = fingerprint(&input.path).ok().map(|fp| Provenance {
        input_fingerprint: fp,
        settings_digest: digest.to_string(),
    });
    let complete = provenance
        .as_ref()
        .is_some_and(|p| is_complete(&outputs, p));
    let estimated_bytes = volume::inspect(&input.path)
        .map(|h| h.working_bytes())
        .unwrap_or(0);
    FileJob {
        input: input.clone(),
        outputs,
        provenance,
        complete,
        estimated_bytes,
    }
}
