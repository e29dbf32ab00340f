//! The batch engine: plan inputs (with resume decisions), schedule subjects on a rayon pool
//! under a memory budget, process each file through the stages, and report.

pub mod plan;
pub mod process;
pub mod report;
pub mod resume;
pub mod scheduler;
pub mod shard;

use crate::stages::{Stage, StageSettings};

/// Everything that decides what a run computes and how it runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Stages to run, in run order.
    pub stages: Vec<Stage>,
    /// Stage parameters.
    pub settings: StageSettings,
    /// gzip level (0–9) for `.nii.gz` outputs.
    pub compression_level: u32,
    /// Redo inputs whose outputs are already complete.
    pub overwrite: bool,
    /// Also write the estimated bias field (`desc-biasfield`).
    pub save_intermediates: bool,
    /// Worker threads.
    pub threads: usize,
    /// Bytes of volumes allowed in flight at once.
    pub memory_budget_bytes: u64,
}

impl RunConfig {
    /// Whether `stage` is enabled.
    pub fn runs(&self, stage: Stage) -> bool {
        self.stages.contains(&stage)
    }
}
