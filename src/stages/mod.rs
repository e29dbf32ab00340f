//! The preprocessing stages, in their fixed order: skull strip → bias-field correction →
//! intensity normalization. Each works on a flat x-fastest `f32` buffer with its [`Grid`]
//! and reports the facts a person (or a trace) needs to judge it.

pub mod bias_correction;
pub mod bspline;
pub mod distance;
pub mod filter;
pub mod grid;
pub mod morphology;
pub mod normalization;
pub mod sharpen;
pub mod skull_strip;
pub mod threshold;

pub use grid::Grid;

use serde::{Deserialize, Serialize};

/// One preprocessing stage. The order of variants is the order they run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Brain extraction: writes the brain mask and zeroes everything outside it.
    SkullStrip,
    /// Estimate a smooth multiplicative field inside the mask and divide it out.
    BiasCorrection,
    /// Robust linear rescaling inside the mask.
    Normalization,
}

impl Stage {
    /// Every stage, in run order.
    pub const ALL: [Stage; 3] = [
        Stage::SkullStrip,
        Stage::BiasCorrection,
        Stage::Normalization,
    ];

    /// Stable snake_case name (used in reports, sidecars and span names).
    pub fn name(self) -> &'static str {
        match self {
            Stage::SkullStrip => "skull_strip",
            Stage::BiasCorrection => "bias_correction",
            Stage::Normalization => "normalization",
        }
    }
}

/// Parameters of every stage; recorded in sidecars and part of the resume fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSettings {
    /// Skull-strip parameters.
    pub skull_strip: skull_strip::Params,
    /// Bias-correction parameters.
    pub bias_correction: bias_correction::Params,
    /// Normalization parameters.
    pub normalization: normalization::Params,
}

/// A fact a stage reports about its own result (threshold, brain volume, field range...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fact {
    /// A count (tried first when read back, so `5` stays a count and `5.0` a measurement).
    Int(i64),
    /// A measurement.
    Float(f64),
}

/// Named facts, in the order the stage reports them.
pub type Facts = Vec<(&'static str, Fact)>;

/// Why a stage could not produce a result for a volume.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The mask came out empty.
    #[error("{stage}: {reason}")]
    Degenerate {
        /// Which stage.
        stage: &'static str,
        /// What was found.
        reason: String,
    },
}
