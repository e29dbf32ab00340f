//! Separable Gaussian smoothing with replicated borders.

use super::grid::Grid;
use rayon::prelude::*;

/// Smooth `src` with an isotropic Gaussian of standard deviation `sigma_mm` (in mm, so
/// anisotropic voxels get per-axis kernels). Axes where sigma is under 0.3 voxels are left
/// alone; a kernel is never wider than its axis (a blur wider than the image only spreads the
/// replicated border further), so the work stays bounded by the image's extents.
pub fn gaussian(src: &[f32], grid: &Grid, sigma_mm: f32) -> Vec<f32> {
    // The first pass reads `src` itself; later ones alternate between two buffers.
    let mut current: Option<Vec<f32>> = None;
    let mut spare = None;
    for axis in 0..3 {
        let sigma = sigma_mm / grid.spacing[axis];
        if sigma.is_nan() || sigma < 0.3 || grid.dims[axis] < 2 {
            continue;
        }
        let kernel = kernel(sigma, grid.dims[axis]);
        let mut out = spare.take().unwrap_or_else(|| vec![0f32; src.len()]);
        convolve_axis(
            current.as_deref().unwrap_or(src),
            &mut out,
            grid,
            axis,
            &kernel,
        );
        spare = current.replace(out);
    }
    current.unwrap_or_else(|| src.to_vec())
}

/// Normalised Gaussian weights, `±3σ` but at most `±extent`.
fn kernel(sigma: f32, extent: usize) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().clamp(1.0, extent as f32) as isize;
    let mut k: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|w| *w /= sum);
    k
}

#[inline]
fn clamped(i: usize, k: usize, radius: usize, n: usize) -> usize {
    (i + k).saturating_sub(radius).min(n - 1)
}

fn convolve_axis(src: &[f32], dst: &mut [f32], grid: &Grid, axis: usize, kernel: &[f32]) {
    let [nx, ny, nz] = grid.dims;
    let plane = nx * ny;
    match axis {
        0 => dst
            .par_chunks_mut(nx)
            .zip(src.par_chunks(nx))
            .for_each(|(out, line)| convolve_line(out, line, kernel)),
        1 => dst
            .par_chunks_mut(plane)
            .zip(src.par_chunks(plane))
            .for_each(|(out, slab)| {
                for (y, row) in out.chunks_mut(nx).enumerate() {
                    weighted_rows(row, slab, nx, ny, y, kernel);
                }
            }),
        _ => dst
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(z, out)| weighted_rows(out, src, plane, nz, z, kernel)),
    }
}

/// `out[x] = Σ_k kernel[k] · line[clamp(x + k - r)]`. Away from the ends the sum runs one
/// kernel weight at a time over the whole interior (a loop the compiler vectorises), in the
/// same order per voxel as at the ends.
fn convolve_line(out: &mut [f32], line: &[f32], kernel: &[f32]) {
    let n = line.len();
    let radius = kernel.len() / 2;
    let interior = radius..n.saturating_sub(radius).max(radius);
    for (x, o) in out.iter_mut().enumerate() {
        if !interior.contains(&x) {
            *o = kernel
                .iter()
                .enumerate()
                .map(|(k, w)| w * line[clamped(x, k, radius, n)])
                .sum();
        }
    }
    if interior.is_empty() {
        return;
    }
    let out = &mut out[interior.clone()];
    out.fill(0.0);
    for (k, &w) in kernel.iter().enumerate() {
        let shifted = &line[interior.start + k - radius..interior.end + k - radius];
        for (o, &v) in out.iter_mut().zip(shifted) {
            *o += w * v;
        }
    }
}

/// `out = Σ_k kernel[k] · rows[clamp(j + k - r)]`, where `rows` holds `count` rows of `width`.
fn weighted_rows(
    out: &mut [f32],
    rows: &[f32],
    width: usize,
    count: usize,
    j: usize,
    kernel: &[f32],
) {
    let radius = kernel.len() / 2;
    out.fill(0.0);
    for (k, &w) in kernel.iter().enumerate() {
        let r = clamped(j, k, radius, count);
        let row = &rows[r * width..(r + 1) * width];
        for (o, &v) in out.iter_mut().zip(row) {
            *o += w * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_the_clamped_sum_at_every_length() {
        let kernel = kernel(1.2, 16);
        let r = kernel.len() / 2;
        for n in r..20 {
            let line: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 - 4.5).collect();
            let mut out = vec![f32::NAN; n];
            convolve_line(&mut out, &line, &kernel);
            for (x, &o) in out.iter().enumerate() {
                let expected: f32 = (0..kernel.len())
                    .map(|k| kernel[k] * line[clamped(x, k, r, n)])
                    .sum();
                assert_eq!(o, expected, "length {n}, x {x}");
            }
        }
    }

    #[test]
    fn preserves_constant_and_mass() {
        let grid = Grid::new([9, 7, 5], [1.0, 1.5, 3.0]);
        let flat = vec![2.5f32; grid.len()];
        let out = gaussian(&flat, &grid, 2.0);
        assert!(out.iter().all(|v| (v - 2.5).abs() < 1e-5));

        let mut spike = vec![0f32; grid.len()];
        spike[grid.index(4, 3, 2)] = 1.0;
        let out = gaussian(&spike, &grid, 1.0);
        let total: f32 = out.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "mass {total}");
        assert!(out[grid.index(4, 3, 2)] < 1.0);
        assert!(out[grid.index(3, 3, 2)] > 0.0);
    }
}
