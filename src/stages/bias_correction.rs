//! Bias-field correction as N4 does it (Tustison et al. 2010, "N4ITK: improved N3 bias
//! correction"): on samples taken about every 4 mm inside the mask, the log intensities with
//! the current field removed are sharpened (histogram deconvolution, [`super::sharpen`]); the
//! residual between them and their sharpened values is approximated by a cubic B-spline
//! ([`super::bspline`], Lee, Wolberg & Shin's scattered-data approximation) and added to the
//! field, until the update stops changing it. Then the control lattice is refined — twice as
//! many cells per axis — and the loop goes on, level by level, from a lattice spacing of about
//! 200 mm down to about 25 mm on an adult head. The field, the sum of every level's lattice,
//! is evaluated at full resolution and divided out.

use super::bspline::{self, Basis, Lattice, Shape};
use super::grid::Grid;
use super::sharpen::{Sharpening, sharpen};
use super::{Fact, Facts};
use multiversion::multiversion;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Bias-correction parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Sample spacing of the shrunk grid the field is estimated on, mm.
    pub shrink_to_mm: f32,
    /// Control-point spacing of the first level's lattice, mm (N4's "spline distance"); each
    /// axis gets at least one cell.
    pub initial_spacing_mm: f32,
    /// Fitting levels; each doubles the cells per axis. A level is used only while it has at
    /// least [`SAMPLES_PER_CONTROL_POINT`] samples per control point.
    pub levels: usize,
    /// Iteration limit per level.
    pub max_iterations: usize,
    /// A level has converged when the standard deviation of the log-field update falls below
    /// this.
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
            initial_spacing_mm: 200.0,
            levels: 4,
            max_iterations: 50,
            convergence: 1e-3,
            sharpening: Sharpening::default(),
            max_gain: 4.0,
        }
    }
}

/// Fewest samples per control point for a level to be fit: finer lattices on small images
/// would follow the anatomy instead of the field.
pub const SAMPLES_PER_CONTROL_POINT: usize = 4;

/// Fewest samples for any field at all (one coarsest lattice has 64 control points).
const MIN_SAMPLES: usize = 10 * 64;

/// The field that was divided out of the image.
#[derive(Debug)]
pub struct Output {
    /// The multiplicative field (geometric mean 1 over the mask samples).
    pub field: Vec<f32>,
    /// Facts: `field_min`, `field_max` (inside the mask), `iterations` (all levels),
    /// `converged` (0/1: every level converged), `samples` (mask voxels on the shrunk grid),
    /// `levels` (fit), `control_points` (of the finest lattice).
    pub facts: Facts,
}

/// Estimate a smooth multiplicative field from the voxels of `image` in `mask` and divide it
/// out of `image`, in place. With too few usable samples to fit the field, the image is left
/// unchanged (field 1).
pub fn correct(image: &mut [f32], mask: &[u8], grid: &Grid, params: &Params) -> Output {
    let samples = Samples::of(image, mask, grid, params.shrink_to_mm);
    let fit = fit(&samples, grid, params);
    let field = field_on_grid(&fit, grid, params.max_gain);
    image.par_iter_mut().zip(&field).for_each(|(v, &f)| *v /= f);
    let (lo, hi) = field
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m != 0)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (&f, _)| {
            (lo.min(f), hi.max(f))
        });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 1.0) };
    let control_points = fit
        .lattices
        .last()
        .map_or(0, |l| l.shape().control_points());
    Output {
        field,
        facts: vec![
            ("field_min", Fact::Float(lo as f64)),
            ("field_max", Fact::Float(hi as f64)),
            ("iterations", Fact::Int(fit.iterations as i64)),
            ("converged", Fact::Int(i64::from(fit.converged))),
            ("samples", Fact::Int(samples.points.len() as i64)),
            ("levels", Fact::Int(fit.lattices.len() as i64)),
            ("control_points", Fact::Int(control_points as i64)),
        ],
    }
}

/// Every step-th voxel (steps of about `shrink_to_mm`) inside the mask with positive intensity:
/// its position in mm and its log intensity.
struct Samples {
    points: Vec<[f64; 3]>,
    log_values: Vec<f64>,
    /// The lines of the grid of every step-th voxel, per axis, in mm.
    axes: [Vec<f64>; 3],
    /// Each point's flat index (x-fastest) in that grid.
    on_axes: Vec<usize>,
}

impl Samples {
    fn of(image: &[f32], mask: &[u8], grid: &Grid, shrink_to_mm: f32) -> Samples {
        let step: [usize; 3] = std::array::from_fn(|a| {
            ((shrink_to_mm / grid.spacing[a]).round() as usize).clamp(1, grid.dims[a].max(1))
        });
        let spacing: [f64; 3] = std::array::from_fn(|a| grid.spacing[a] as f64);
        let axes: [Vec<f64>; 3] = std::array::from_fn(|a| {
            (0..grid.dims[a])
                .step_by(step[a])
                .map(|v| v as f64 * spacing[a])
                .collect()
        });
        let (mut points, mut log_values, mut on_axes) = (Vec::new(), Vec::new(), Vec::new());
        let mut at = 0;
        for (z, &zmm) in (0..grid.dims[2]).step_by(step[2]).zip(&axes[2]) {
            for (y, &ymm) in (0..grid.dims[1]).step_by(step[1]).zip(&axes[1]) {
                for (x, &xmm) in (0..grid.dims[0]).step_by(step[0]).zip(&axes[0]) {
                    let i = grid.index(x, y, z);
                    if mask[i] != 0 && image[i] > 0.0 {
                        points.push([xmm, ymm, zmm]);
                        log_values.push((image[i] as f64).ln());
                        on_axes.push(at);
                    }
                    at += 1;
                }
            }
        }
        Samples {
            points,
            log_values,
            axes,
            on_axes,
        }
    }
}

/// The fitted log field: one lattice per level, and the mean subtracted from their sum.
struct Fit {
    lattices: Vec<Lattice>,
    mean: f64,
    iterations: usize,
    converged: bool,
}

/// N4's loop on the samples, level by level: sharpen the log intensities with the current
/// field removed, approximate the residual with the level's B-spline and add it to the field,
/// until the update no longer changes it.
fn fit(samples: &Samples, grid: &Grid, params: &Params) -> Fit {
    let Samples {
        points,
        log_values,
        axes,
        on_axes,
    } = samples;
    let mut out = Fit {
        lattices: Vec::new(),
        mean: 0.0,
        iterations: 0,
        converged: false,
    };
    if points.len() < MIN_SAMPLES {
        return out;
    }
    let extent: [f64; 3] =
        std::array::from_fn(|a| grid.dims[a].saturating_sub(1) as f64 * grid.spacing[a] as f64);
    let spacing = params.initial_spacing_mm.max(f32::MIN_POSITIVE) as f64;
    let first = Shape::new(extent.map(|e| (e / spacing).round() as usize), extent);
    let mut log_field = vec![0f64; points.len()];
    let mut all_converged = true;
    for level in 0..params.levels {
        let shape = first.refined(1 << level);
        if points.len() < SAMPLES_PER_CONTROL_POINT * shape.control_points() {
            break;
        }
        let basis = Basis::new(shape, points);
        let mut lattice = Lattice::zeros(shape);
        let mut converged = false;
        for _ in 0..params.max_iterations {
            out.iterations += 1;
            let corrected: Vec<f64> = log_values
                .iter()
                .zip(&log_field)
                .map(|(v, f)| v - f)
                .collect();
            let sharpened = sharpen(&corrected, &params.sharpening);
            let residual: Vec<f64> = corrected
                .iter()
                .zip(&sharpened)
                .map(|(c, s)| c - s)
                .collect();
            let update = basis.approximate(&residual);
            let at_points: Vec<f64> = {
                let on_grid = update.values_on(axes);
                on_axes.iter().map(|&i| on_grid[i]).collect()
            };
            lattice.add(&update);
            log_field
                .iter_mut()
                .zip(&at_points)
                .for_each(|(f, u)| *f += u);
            if std_dev(&at_points) < params.convergence {
                converged = true;
                break;
            }
        }
        all_converged &= converged;
        out.lattices.push(lattice);
    }
    out.converged = all_converged && !out.lattices.is_empty();
    out.mean = log_field.iter().sum::<f64>() / log_field.len() as f64;
    out
}

/// `exp(Σ levels − mean)` at every voxel, the gain clamped to `1/max_gain..max_gain`; 1
/// everywhere when nothing was fit.
fn field_on_grid(fit: &Fit, grid: &Grid, max_gain: f32) -> Vec<f32> {
    let max_log = (max_gain as f64).ln();
    bspline::sum_on_grid(&fit.lattices, grid, |row| gains(row, fit.mean, max_log))
}

/// `log_field <- exp(clamp(log_field − mean, ±max_log))`, a row at a time. Compiled twice,
/// and the AVX2 build chosen where the CPU has it: [`exp_small`] then runs four voxels at once.
#[multiversion(targets("x86_64+avx2"))]
fn gains(log_field: &mut [f32], mean: f64, max_log: f64) {
    for v in log_field {
        *v = exp_small((*v as f64 - mean).clamp(-max_log, max_log)) as f32;
    }
}

/// `e^x` for `|x| < 700`, within two units in the last place of `f64::exp`. Rounded to `f32`,
/// as every gain is, the two could differ only where an `f64` lands that close to an `f32`
/// rounding boundary; they agreed on all 4 million values the tests try. It is written so that
/// a loop of them vectorises, as the C library's `exp`, a call per voxel, cannot (it was 5 % of
/// a head's CPU): `x = k·ln 2 + r`
/// with `|r| ≤ ln 2 / 2` (Cody and Waite's two-part `ln 2`), `e^r` by its Taylor series to
/// `r¹³` (truncation below 2⁻⁵⁸ relative), and `2^k` put in the exponent bits.
#[inline]
fn exp_small(x: f64) -> f64 {
    // fdlibm's split of ln 2: the high part has trailing zeros, so `k·LN2_HI` is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5·2⁵² rounds to an integer, which then sits in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let shifted = x * std::f64::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // 1/13!, 1/12!, …, 1/1!, 1/0!, highest first.
    const TAYLOR: [f64; 14] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        1.0 / 2.0,
        1.0,
        1.0,
    ];
    let e_r = TAYLOR.iter().fold(0.0, |p, &c| p * r + c);
    // The low 12 bits of `shifted` hold k (mod 4096); k + 1023 is 2^k's biased exponent.
    let two_k = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    e_r * two_k
}

fn std_dev(values: &[f64]) -> f64 {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_small_is_within_two_ulps_of_exp() {
        let n = 2_000_001;
        for i in 0..n {
            let x = -699.0 + 1398.0 * i as f64 / (n - 1) as f64;
            let (fast, exact) = (exp_small(x), x.exp());
            let ulp = f64::from_bits(exact.to_bits() + 1) - exact;
            assert!((fast - exact).abs() <= 2.0 * ulp, "{x}: {fast} vs {exact}");
        }
    }

    #[test]
    fn gains_round_to_the_same_f32_as_exp() {
        // 4 million log field values from −2 to 2, across the default clamp of ±ln 4: the
        // gains written are those the C library's exp gives, bit for bit.
        let max_log = 4f64.ln();
        let n = 4_000_000;
        let logs: Vec<f32> = (0..n)
            .map(|i| (-2.0 + 4.0 * i as f64 / n as f64) as f32)
            .collect();
        let mut got = logs.clone();
        gains(&mut got, 0.1, max_log);
        let differ: Vec<f32> = logs
            .iter()
            .zip(&got)
            .filter(|&(&x, &g)| ((x as f64 - 0.1).clamp(-max_log, max_log)).exp() as f32 != g)
            .map(|(&x, _)| x)
            .collect();
        assert!(
            differ.is_empty(),
            "{} differ, e.g. {:?}",
            differ.len(),
            &differ[..differ.len().min(5)]
        );
    }
}
