//! The batch engine: plan inputs (with resume decisions), schedule subjects on a rayon pool
//! under a memory budget, process each file through the stages, and report.
//!
//! [`batch`] is the whole run in order (discover → shard → plan → schedule → process →
//! report); it takes a [`RunConfig`] built once by the CLI and never sees clap types.

pub mod batch;
pub mod cancel;
pub mod plan;
pub mod process;
pub mod report;
pub mod resume;
pub mod scheduler;
pub mod shard;

use crate::bids::Filters;
use crate::stages::{Stage, StageSettings};
use shard::Shard;
use std::path::PathBuf;

/// Everything that decides what a run reads, computes and writes, and how it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Root of the input BIDS dataset.
    pub bids_dir: PathBuf,
    /// Root of the BIDS-Derivatives output (absolute).
    pub output_dir: PathBuf,
    /// Which subjects, sessions and suffixes to process.
    pub filters: Filters,
    /// Only this shard of the label-sorted subjects.
    pub shard: Option<Shard>,
    /// Stages to run, in run order (sorted, no repeats).
    pub stages: Vec<Stage>,
    /// Stage parameters.
    pub settings: StageSettings,
    /// gzip level (0–9) for `.nii.gz` outputs.
    pub compression_level: u32,
    /// Redo inputs whose outputs are already complete.
    pub overwrite: bool,
    /// Also write the estimated bias field (`desc-biasfield`).
    pub save_intermediates: bool,
    /// Worker threads; `None`: one per core of the machine the run is on.
    pub threads: Option<usize>,
    /// Memory budget for volumes in flight, GB (10^9 bytes); `None`: 75 % of the memory
    /// available when the run starts (within the cgroup's limit, if any). A file whose
    /// estimated working set exceeds the budget fails before anything is allocated for it.
    pub mem_gb: Option<f64>,
    /// `participants.tsv` columns recorded on every span of a subject
    /// (`participant.<column>`), e.g. `site`, `age`.
    pub participant_columns: Vec<String>,
}

impl RunConfig {
    /// Whether `stage` is enabled.
    pub fn runs(&self, stage: Stage) -> bool {
        self.stages.contains(&stage)
    }

    /// A digest of what decides the work done (stages, their parameters, the gzip level) but
    /// not the version, so two builds run with the same settings agree; traced as
    /// `run.settings_digest` for `compare`'s check that two runs did the same work.
    pub fn work_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = serde_json::to_string(&(&self.stages, &self.settings, self.compression_level))
            .expect("settings serialize");
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }

    /// Worker threads this run uses.
    pub fn thread_count(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Bytes of volumes allowed in flight at once.
    pub fn memory_budget_bytes(&self) -> u64 {
        match self.mem_gb {
            Some(gb) => (gb * 1e9) as u64,
            None => {
                let mut system = sysinfo::System::new();
                system.refresh_memory();
                // Under a container or SLURM memory limit, the cgroup's free memory is what
                // the run may use, whatever the machine has.
                let available = match system.cgroup_limits() {
                    Some(cgroup) => cgroup.free_memory.min(system.available_memory()),
                    None => system.available_memory(),
                };
                (available as f64 * 0.75) as u64
            }
        }
    }
}
