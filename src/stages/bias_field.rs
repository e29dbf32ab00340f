//! Bias-field correction by a homomorphic low-pass of log intensities inside the mask, at
//! reduced resolution: the smooth multiplicative field is what survives a wide Gaussian of
//! `log(I)`, computed by normalized convolution so the mask edge does not pull it down.

use super::grid::Grid;
use super::{Fact, Facts, filter};
use rayon::prelude::*;
use serde::Serialize;

/// Bias-correction parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// Target voxel size of the shrunk grid the field is estimated on, mm.
    pub shrink_to_mm: f32,
    /// Standard deviation of the low-pass in mm (larger: smoother field).
    pub smoothing_mm: f32,
    /// The field is clamped to `[1/max_gain, max_gain]`.
    pub max_gain: f32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            shrink_to_mm: 4.0,
            smoothing_mm: 30.0,
            max_gain: 4.0,
        }
    }
}

/// The corrected image and the field that was divided out.
#[derive(Debug)]
pub struct Output {
    /// `image / field`, x-fastest.
    pub corrected: Vec<f32>,
    /// The multiplicative field (mean 1 inside the mask in the log domain).
    pub field: Vec<f32>,
    /// Facts: `field_min`, `field_max` (inside the mask), `shrink_factor`.
    pub facts: Facts,
}

/// Estimate and remove a smooth multiplicative field from `image` using voxels in `mask`.
pub fn run(image: &[f32], mask: &[u8], grid: &Grid, params: &Params) -> Output {
    let factors: [usize; 3] = std::array::from_fn(|a| {
        ((params.shrink_to_mm / grid.spacing[a]).round() as usize).clamp(1, grid.dims[a].max(1))
    });
    let coarse = Grid::new(
        std::array::from_fn(|a| grid.dims[a].div_ceil(factors[a])),
        std::array::from_fn(|a| grid.spacing[a] * factors[a] as f32),
    );

    // Block sums of log-intensity and weight on the coarse grid.
    let mut sum_log = vec![0f32; coarse.len()];
    let mut weight = vec![0f32; coarse.len()];
    let [nx, ny, nz] = grid.dims;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = grid.index(x, y, z);
                if mask[i] != 0 && image[i] > 0.0 {
                    let c = coarse.index(x / factors[0], y / factors[1], z / factors[2]);
                    sum_log[c] += image[i].ln();
                    weight[c] += 1.0;
                }
            }
        }
    }
    let smooth_log = filter::gaussian(&sum_log, &coarse, params.smoothing_mm);
    let smooth_w = filter::gaussian(&weight, &coarse, params.smoothing_mm);
    let max_log = params.max_gain.ln();
    let mut log_field: Vec<f32> = smooth_log
        .iter()
        .zip(&smooth_w)
        .map(|(&s, &w)| if w > 1e-3 { s / w } else { f32::NAN })
        .collect();
    // Zero mean inside the mask, so the field changes shading, not overall brightness.
    let (total, count) = log_field
        .iter()
        .zip(&weight)
        .filter(|(l, w)| **w > 0.0 && l.is_finite())
        .fold((0f64, 0f64), |(s, n), (&l, &w)| {
            (s + (l * w) as f64, n + w as f64)
        });
    let mean = if count > 0.0 {
        (total / count) as f32
    } else {
        0.0
    };
    for l in &mut log_field {
        *l = if l.is_finite() {
            (*l - mean).clamp(-max_log, max_log)
        } else {
            0.0
        };
    }

    let field = upsample(&log_field, &coarse, grid, factors);
    let corrected: Vec<f32> = image.par_iter().zip(&field).map(|(&v, &f)| v / f).collect();
    let (lo, hi) = field
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m != 0)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (&f, _)| {
            (lo.min(f), hi.max(f))
        });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 1.0) };
    Output {
        corrected,
        field,
        facts: vec![
            ("field_min", Fact::Float(lo as f64)),
            ("field_max", Fact::Float(hi as f64)),
            (
                "shrink_factor",
                Fact::Int(factors.iter().copied().max().unwrap_or(1) as i64),
            ),
        ],
    }
}

/// Trilinear interpolation of a coarse log-field back to the full grid, exponentiated.
fn upsample(log_field: &[f32], coarse: &Grid, fine: &Grid, factors: [usize; 3]) -> Vec<f32> {
    // Fine voxel i sits at coarse coordinate (i - (f - 1) / 2) / f.
    let axis_weights = |a: usize| -> Vec<(usize, usize, f32)> {
        let f = factors[a] as f32;
        let n = coarse.dims[a];
        (0..fine.dims[a])
            .map(|i| {
                let u = ((i as f32 - (f - 1.0) / 2.0) / f).clamp(0.0, (n - 1) as f32);
                let i0 = u.floor() as usize;
                let i1 = (i0 + 1).min(n - 1);
                (i0, i1, u - i0 as f32)
            })
            .collect()
    };
    let (wx, wy, wz) = (axis_weights(0), axis_weights(1), axis_weights(2));
    let [nx, ny, _] = fine.dims;
    let mut out = vec![0f32; fine.len()];
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slab)| {
            let (z0, z1, tz) = wz[z];
            for (y, row) in slab.chunks_mut(nx).enumerate() {
                let (y0, y1, ty) = wy[y];
                for (x, o) in row.iter_mut().enumerate() {
                    let (x0, x1, tx) = wx[x];
                    let at = |x, y, z| log_field[coarse.index(x, y, z)];
                    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
                    let c00 = lerp(at(x0, y0, z0), at(x1, y0, z0), tx);
                    let c10 = lerp(at(x0, y1, z0), at(x1, y1, z0), tx);
                    let c01 = lerp(at(x0, y0, z1), at(x1, y0, z1), tx);
                    let c11 = lerp(at(x0, y1, z1), at(x1, y1, z1), tx);
                    *o = lerp(lerp(c00, c10, ty), lerp(c01, c11, ty), tz).exp();
                }
            }
        });
    out
}
