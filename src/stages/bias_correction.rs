//! Bias-field correction in the manner of N4 (Tustison et al. 2010): on a grid shrunk to
//! about 4 mm, the log intensities inside the mask are repeatedly sharpened (histogram
//! deconvolution, [`super::sharpen`]), the residual between image and sharpened image is fit
//! with a smooth field (a 3-D polynomial, [`super::polyfit`]), until the field stops
//! changing; the field is then evaluated at full resolution and divided out.

use super::grid::Grid;
use super::polyfit::Polynomial;
use super::sharpen::{Sharpening, sharpen};
use super::{Fact, Facts};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Bias-correction parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Sample spacing of the shrunk grid the field is estimated on, mm.
    pub shrink_to_mm: f32,
    /// Total degree of the polynomial field (3: 20 terms).
    pub degree: u32,
    /// Iteration limit.
    pub max_iterations: usize,
    /// Converged when the standard deviation of the log-field update falls below this.
    pub convergence: f64,
    /// Histogram sharpening.
    pub sharpening: Sharpening,
    /// The field is clamped to `[1/max_gain, max_gain]`.
    pub max_gain: f32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            shrink_to_mm: 4.0,
            degree: 3,
            max_iterations: 50,
            convergence: 1e-3,
            sharpening: Sharpening::default(),
            max_gain: 4.0,
        }
    }
}

/// The corrected image and the field that was divided out.
#[derive(Debug)]
pub struct Output {
    /// `image / field`, x-fastest.
    pub corrected: Vec<f32>,
    /// The multiplicative field (geometric mean 1 over the mask samples).
    pub field: Vec<f32>,
    /// Facts: `field_min`, `field_max` (inside the mask), `iterations`, `converged` (0/1),
    /// `samples` (mask voxels on the shrunk grid).
    pub facts: Facts,
}

/// Estimate and remove a smooth multiplicative field from `image` using voxels in `mask`.
/// With too few usable samples to fit the field, the image is returned unchanged (field 1).
pub fn correct(image: &[f32], mask: &[u8], grid: &Grid, params: &Params) -> Output {
    let samples = Samples::of(image, mask, grid, params.shrink_to_mm);
    let fit = fit(&samples, params);
    let field = match &fit.model {
        Some((poly, mean)) => field_on_grid(poly, *mean, grid, params.max_gain),
        None => vec![1f32; grid.len()],
    };
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
            ("iterations", Fact::Int(fit.iterations as i64)),
            ("converged", Fact::Int(i64::from(fit.converged))),
            ("samples", Fact::Int(samples.points.len() as i64)),
        ],
    }
}

/// Every step-th voxel (steps of about `shrink_to_mm`) inside the mask with positive intensity:
/// its position in mm and its log intensity.
struct Samples {
    points: Vec<[f64; 3]>,
    log_values: Vec<f64>,
}

impl Samples {
    fn of(image: &[f32], mask: &[u8], grid: &Grid, shrink_to_mm: f32) -> Samples {
        let step: [usize; 3] = std::array::from_fn(|a| {
            ((shrink_to_mm / grid.spacing[a]).round() as usize).clamp(1, grid.dims[a].max(1))
        });
        let spacing: [f64; 3] = std::array::from_fn(|a| grid.spacing[a] as f64);
        let [nx, ny, nz] = grid.dims;
        let (mut points, mut log_values) = (Vec::new(), Vec::new());
        for z in (0..nz).step_by(step[2]) {
            for y in (0..ny).step_by(step[1]) {
                for x in (0..nx).step_by(step[0]) {
                    let i = grid.index(x, y, z);
                    if mask[i] != 0 && image[i] > 0.0 {
                        points.push([
                            x as f64 * spacing[0],
                            y as f64 * spacing[1],
                            z as f64 * spacing[2],
                        ]);
                        log_values.push((image[i] as f64).ln());
                    }
                }
            }
        }
        Samples { points, log_values }
    }
}

/// The fitted log field: a polynomial and the mean subtracted from it.
struct Fit {
    model: Option<(Polynomial, f64)>,
    iterations: usize,
    converged: bool,
}

/// N4's loop on the samples: sharpen the log intensities with the current field removed, fit
/// the residual with a polynomial, repeat until the field stops changing.
fn fit(samples: &Samples, params: &Params) -> Fit {
    let Samples { points, log_values } = samples;
    let mut log_field = vec![0f64; points.len()];
    let mut out = Fit {
        model: None,
        iterations: 0,
        converged: false,
    };
    if points.len() < 10 * Polynomial::terms(params.degree) {
        return out;
    }
    for _ in 0..params.max_iterations {
        out.iterations += 1;
        let unbiased: Vec<f64> = log_values
            .iter()
            .zip(&log_field)
            .map(|(v, f)| v - f)
            .collect();
        let sharpened = sharpen(&unbiased, &params.sharpening);
        let residual: Vec<f64> = log_values
            .iter()
            .zip(&sharpened)
            .map(|(v, s)| v - s)
            .collect();
        let Some(poly) = Polynomial::fit(points, &residual, params.degree) else {
            break;
        };
        let mut update: Vec<f64> = points.iter().map(|p| poly.eval(p)).collect();
        let mean = update.iter().sum::<f64>() / update.len() as f64;
        update.iter_mut().for_each(|u| *u -= mean);
        let change = std_dev(update.iter().zip(&log_field).map(|(u, f)| u - f));
        log_field = update;
        out.model = Some((poly, mean));
        if change < params.convergence {
            out.converged = true;
            break;
        }
    }
    out
}

/// `exp(poly - mean)` at every voxel, the gain clamped to `1/max_gain..max_gain`.
fn field_on_grid(poly: &Polynomial, mean: f64, grid: &Grid, max_gain: f32) -> Vec<f32> {
    let [nx, ny, _] = grid.dims;
    let spacing: [f64; 3] = std::array::from_fn(|a| grid.spacing[a] as f64);
    let max_log = (max_gain as f64).ln();
    let powers = poly.grid_powers(grid.dims, spacing);
    let mut field = vec![1f32; grid.len()];
    field
        .par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slab)| {
            for y in 0..ny {
                for x in 0..nx {
                    let f = (poly.eval_on_grid(&powers, x, y, z) - mean).clamp(-max_log, max_log);
                    slab[x + nx * y] = f.exp() as f32;
                }
            }
        });
    field
}

fn std_dev(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    (values.map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
}
