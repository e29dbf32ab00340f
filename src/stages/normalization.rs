//! Intensity normalization by the white-matter peak: inside the mask, the brightest major
//! mode of the smoothed intensity histogram (white matter, in T1-weighted images) is scaled
//! to 1.0; zero stays zero, negative values become 0, and voxels outside the mask are 0.
//! Scaling rather than stretching keeps tissue ratios, so the same tissue lands at the same
//! value across subjects whatever their scanner gain.

use super::{Fact, Facts, threshold};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Normalization parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Histogram bins between the 0.5th and 99.5th percentiles inside the mask.
    pub bins: usize,
    /// Gaussian smoothing of the histogram, in bins.
    pub smoothing_bins: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            bins: 256,
            smoothing_bins: 2.0,
        }
    }
}

/// What the rescaling found.
#[derive(Debug)]
pub struct Output {
    /// Facts: `wm_peak` (the input intensity mapped to 1.0).
    pub facts: Facts,
}

/// Rescale `image` in place so the white-matter peak inside `mask` becomes 1.0.
pub fn normalize(image: &mut [f32], mask: &[u8], params: &Params) -> Output {
    let peak = white_matter_peak(image, mask, params).filter(|p| *p > 0.0);
    let scale = peak.map_or(0.0, |p| 1.0 / p);
    image.par_iter_mut().zip(mask).for_each(|(v, &m)| {
        *v = if m != 0 && v.is_finite() {
            (*v * scale).max(0.0)
        } else {
            0.0
        }
    });
    Output {
        facts: vec![("wm_peak", Fact::Float(peak.unwrap_or(0.0) as f64))],
    }
}

/// The centre of the highest-intensity major mode: the maximum of the smoothed histogram
/// among values above the median (white matter is the brightest large class in T1w).
fn white_matter_peak(image: &[f32], mask: &[u8], params: &Params) -> Option<f32> {
    let inside = |i: usize| mask[i] != 0;
    let [lo, median, hi] = threshold::percentiles(image, inside, [0.5, 50.0, 99.5])?;
    if hi <= lo {
        return Some(hi);
    }
    let bins = params.bins.max(8);
    let width = (hi - lo) / bins as f32;
    let hist = image
        .par_iter()
        .zip(mask)
        .fold(
            || vec![0f64; bins],
            |mut hist, (&v, &m)| {
                if m != 0 && (lo..=hi).contains(&v) {
                    hist[(((v - lo) / width) as usize).min(bins - 1)] += 1.0;
                }
                hist
            },
        )
        .reduce(|| vec![0f64; bins], threshold::summed);
    let sigma = params.smoothing_bins.max(0.5);
    let radius = (3.0 * sigma).ceil() as isize;
    let smoothed: Vec<f64> = (0..bins as isize)
        .map(|b| {
            (-radius..=radius)
                .filter_map(|k| {
                    let j = b + k;
                    (0..bins as isize)
                        .contains(&j)
                        .then(|| hist[j as usize] * (-0.5 * (k as f64 / sigma).powi(2)).exp())
                })
                .sum()
        })
        .collect();
    let first = (((median - lo) / width).max(0.0) as usize).min(bins - 1);
    let best = (first..bins).max_by(|&a, &b| smoothed[a].total_cmp(&smoothed[b]))?;
    Some(lo + (best as f32 + 0.5) * width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_matter_lands_at_one_whatever_the_gain() {
        for gain in [0.5f32, 1.0, 3.0] {
            // 30 % CSF at 0.2, 30 % GM at 0.65, 40 % WM at 1.0, plus a few hot outliers.
            let mut image: Vec<f32> = (0..10_000)
                .map(|i| {
                    // Peaked (triangular) spread of ±5 % around each class centre.
                    let wobble =
                        (((i * 7919) % 100) + ((i * 104_729) % 100)) as f32 / 2000.0 - 0.05;
                    gain * match i % 10 {
                        0..=2 => 0.2 + wobble,
                        3..=5 => 0.65 + wobble,
                        _ => 1.0 + wobble,
                    }
                })
                .collect();
            image[0] = 1e6;
            let mask = vec![1u8; image.len()];
            normalize(&mut image, &mask, &Params::default());
            let [median] = threshold::percentiles(&image, |i| i % 10 >= 6, [50.0]).unwrap();
            assert!(
                (median - 1.0).abs() < 0.02,
                "gain {gain}: WM median {median}"
            );
        }
    }
}
