//! Robust intensity normalization: inside the mask, the low percentile maps to 0 and the
//! high percentile to 1; values are clamped to `[0, 1]` and voxels outside the mask are 0.

use super::{Fact, Facts, threshold};
use rayon::prelude::*;
use serde::Serialize;

/// Normalization parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// Percentile (0–100) inside the mask that maps to 0.
    pub low_percentile: f64,
    /// Percentile (0–100) inside the mask that maps to 1.
    pub high_percentile: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            low_percentile: 1.0,
            high_percentile: 99.0,
        }
    }
}

/// The rescaled image.
#[derive(Debug)]
pub struct Output {
    /// Values in `[0, 1]`, x-fastest.
    pub normalized: Vec<f32>,
    /// Facts: `low_value`, `high_value` (the input intensities mapped to 0 and 1).
    pub facts: Facts,
}

/// Rescale `image` using the intensity distribution inside `mask`.
pub fn run(image: &[f32], mask: &[u8], params: &Params) -> Output {
    let mut inside: Vec<f32> = image
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m != 0)
        .map(|(&v, _)| v)
        .collect();
    let lo = threshold::percentile(&mut inside, params.low_percentile).unwrap_or(0.0);
    let hi = threshold::percentile(&mut inside, params.high_percentile).unwrap_or(1.0);
    let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
    let normalized = image
        .par_iter()
        .zip(mask)
        .map(|(&v, &m)| {
            if m != 0 {
                ((v - lo) * scale).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    Output {
        normalized,
        facts: vec![
            ("low_value", Fact::Float(lo as f64)),
            ("high_value", Fact::Float(hi as f64)),
        ],
    }
}
