//! Separable Gaussian smoothing with replicated borders.

use super::grid::Grid;
use multiversion::multiversion;
use rayon::prelude::*;

/// Smooth `src` with an isotropic Gaussian of standard deviation `sigma_mm` (in mm, so
/// anisotropic voxels get per-axis kernels). Axes where sigma is under 0.3 voxels are left
/// alone; a kernel is never wider than its axis (a blur wider than the image only spreads the
/// replicated border further), so the work stays bounded by the image's extents.
///
/// One volume-sized buffer: a copy of `src`, smoothed in place axis by axis, each pass
/// keeping only the original lines, planes or kernel-wide ring of planes it still reads.
pub fn gaussian(src: &[f32], grid: &Grid, sigma_mm: f32) -> Vec<f32> {
    let mut out = src.to_vec();
    for axis in 0..3 {
        let sigma = sigma_mm / grid.spacing[axis];
        if sigma.is_nan() || sigma < 0.3 || grid.dims[axis] < 2 {
            continue;
        }
        let kernel = kernel(sigma, grid.dims[axis]);
        match axis {
            0 => smooth_x(&mut out, grid, &kernel),
            1 => smooth_y(&mut out, grid, &kernel),
            _ => smooth_z(&mut out, grid, &kernel),
        }
    }
    out
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

/// Along x, line by line, each line read from a copy of itself.
fn smooth_x(data: &mut [f32], grid: &Grid, kernel: &[f32]) {
    let nx = grid.dims[0];
    data.par_chunks_mut(nx)
        .for_each_init(Vec::new, |line: &mut Vec<f32>, out| {
            line.clear();
            line.extend_from_slice(out);
            convolve_line(out, line, kernel);
        });
}

/// Along y, plane by plane, each plane read from a copy of itself.
fn smooth_y(data: &mut [f32], grid: &Grid, kernel: &[f32]) {
    let [nx, ny, _] = grid.dims;
    data.par_chunks_mut(nx * ny)
        .for_each_init(Vec::new, |slab: &mut Vec<f32>, out| {
            slab.clear();
            slab.extend_from_slice(out);
            for (y, row) in out.chunks_mut(nx).enumerate() {
                weighted_rows(row, slab, nx, ny, y, kernel);
            }
        });
}

/// Along z, plane after plane (each plane's rows in parallel). Output plane `z` reads the
/// original planes `z - r ..= z + r`: those past `z` are still in place, the others are
/// kept in a ring of `r + 1` planes, copied just before they are overwritten.
fn smooth_z(data: &mut [f32], grid: &Grid, kernel: &[f32]) {
    let [nx, ny, nz] = grid.dims;
    let plane = nx * ny;
    let radius = kernel.len() / 2;
    let slots = radius + 1;
    let mut ring = vec![0f32; slots * plane];
    for z in 0..nz {
        let (done, ahead) = data.split_at_mut((z + 1) * plane);
        let out = &mut done[z * plane..];
        ring[(z % slots) * plane..][..plane].copy_from_slice(out);
        let ring = &ring;
        let source = |k: usize| {
            let p = clamped(z, k, radius, nz);
            if p <= z {
                &ring[(p % slots) * plane..][..plane]
            } else {
                &ahead[(p - z - 1) * plane..][..plane]
            }
        };
        out.par_chunks_mut(nx).enumerate().for_each(|(y, row)| {
            weighted_sum(row, kernel, |k| &source(k)[y * nx..(y + 1) * nx]);
        });
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
    weighted_sum(&mut out[interior.clone()], kernel, |k| {
        &line[interior.start + k - radius..interior.end + k - radius]
    });
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
    weighted_sum(out, kernel, |k| {
        let r = clamped(j, k, radius, count);
        &rows[r * width..(r + 1) * width]
    });
}

/// `out = Σ_k kernel[k] · row(k)`, summed one weight at a time over the whole row (a loop
/// that vectorises). Compiled twice, and the AVX2 build chosen where the CPU has it: twice
/// the lanes, and the same operations in the same order, so the same sums.
#[multiversion(targets("x86_64+avx2"))]
fn weighted_sum<'a>(out: &mut [f32], kernel: &[f32], row: impl Fn(usize) -> &'a [f32]) {
    out.fill(0.0);
    for (k, &w) in kernel.iter().enumerate() {
        for (o, &v) in out.iter_mut().zip(row(k)) {
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

    /// The in-place passes against plain out-of-place ones that read every neighbour from a
    /// copy: same sums in the same order, so the same values, on grids whose kernels reach
    /// past every border.
    #[test]
    fn in_place_passes_match_out_of_place_ones() {
        for (dims, spacing, sigma) in [
            ([9, 7, 5], [1.0, 1.5, 3.0], 2.0),
            ([4, 3, 11], [0.5, 0.5, 0.7], 1.0),
            ([6, 5, 2], [1.0, 1.0, 1.0], 5.0),
        ] {
            let grid = Grid::new(dims, spacing);
            let src: Vec<f32> = (0..grid.len())
                .map(|i| ((i * 7919) % 101) as f32 / 10.0 - 3.0)
                .collect();
            let mut expected = src.clone();
            for axis in 0..3 {
                let sigma = sigma / spacing[axis];
                if sigma < 0.3 || dims[axis] < 2 {
                    continue;
                }
                let kernel = kernel(sigma, dims[axis]);
                let r = kernel.len() / 2;
                let before = expected.clone();
                for z in 0..dims[2] {
                    for y in 0..dims[1] {
                        for x in 0..dims[0] {
                            let mut at = [x, y, z];
                            let mut sum = 0f32;
                            for (k, w) in kernel.iter().enumerate() {
                                at[axis] = clamped([x, y, z][axis], k, r, dims[axis]);
                                sum += w * before[grid.index(at[0], at[1], at[2])];
                            }
                            expected[grid.index(x, y, z)] = sum;
                        }
                    }
                }
            }
            assert_eq!(gaussian(&src, &grid, sigma), expected, "{dims:?}");
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
