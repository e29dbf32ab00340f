//! Which voxels lie within a Euclidean radius (in mm, on anisotropic grids) of a mask's
//! foreground or background: the test behind spherical erosion and dilation.
//!
//! The squared distance separates by axis, `d² = dx² + dy² + dz²`, and a voxel within radius
//! `r` can only be reached by features at most `r` away along each axis. So after an exact
//! first pass along x (two scans of each line), the y and z passes are minima over a window
//! of `±r/spacing` rows or planes, each shifted row taken whole and in memory order; the
//! threshold decision is the same as that of an exact distance transform, at a fraction of
//! its work (no lower envelope, no strided gathers).

use super::grid::Grid;
use multiversion::multiversion;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Which voxels of a mask the distance is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Of {
    /// The mask's non-zero voxels.
    Foreground,
    /// The mask's zero voxels.
    Background,
}

/// 1 where the voxel is within `radius_mm` (inclusive) of a voxel of `mask` of kind `of`,
/// 0 elsewhere (everywhere, when there is no such voxel). Distances run between voxel
/// centres and stay inside the grid.
///
/// The z-planes are split into one run per thread. Each run keeps a ring of the x/y-passed
/// planes its window needs (`2·r/spacing + 1` of them) instead of a passed copy of the whole
/// volume: no volume-sized temporary to fault in, and the planes it reads stay in cache. Runs
/// recompute the planes their windows share; a run is at least two windows long, so that is
/// at most half again the x/y work (on a 1 mm head with 2 threads, under a tenth).
pub fn within_radius(mask: &[u8], of: Of, grid: &Grid, radius_mm: f32) -> Vec<u8> {
    let [_, ny, nz] = grid.dims;
    if mask.is_empty() {
        return Vec::new();
    }
    let kz = window(grid.spacing[2], radius_mm, nz);
    let reach = kz.last().map_or(0, |&(k, _)| k as usize);
    let pass = Pass {
        mask,
        grid,
        foreground: of == Of::Foreground,
        r2: radius_mm * radius_mm,
        ky: window(grid.spacing[1], radius_mm, ny),
        kz,
        reach,
    };
    let plane = grid.dims[0] * ny;
    let per_run = nz
        .div_ceil(rayon::current_num_threads())
        .max(2 * pass.ring_len());
    // Every byte is written by `planes`, so the block is not zeroed first.
    let mut out = Vec::with_capacity(mask.len());
    out.spare_capacity_mut()[..mask.len()]
        .par_chunks_mut(plane * per_run)
        .enumerate()
        .for_each(|(run, out)| planes(&pass, run * per_run, out));
    // SAFETY: the runs' chunks cover `..mask.len()`, and `planes` writes each byte of its own.
    unsafe { out.set_len(mask.len()) };
    out
}

/// What every run of planes reads.
struct Pass<'a> {
    mask: &'a [u8],
    grid: &'a Grid,
    foreground: bool,
    /// The squared radius.
    r2: f32,
    /// The y and z window offsets, from [`window`].
    ky: Vec<(isize, f32)>,
    kz: Vec<(isize, f32)>,
    /// The largest z offset.
    reach: usize,
}

impl Pass<'_> {
    /// Planes in the ring: those one output plane's z window reads.
    fn ring_len(&self) -> usize {
        2 * self.reach + 1
    }
}

/// Output planes `first..` (as many as `out` holds), every byte of `out` written. Compiled
/// twice, and the AVX2 build chosen where the CPU has it: the window minima take twice the
/// lanes, and the same operations in the same order give the same values.
#[multiversion(targets("x86_64+avx2"))]
fn planes(pass: &Pass, first: usize, out: &mut [MaybeUninit<u8>]) {
    let [nx, ny, nz] = pass.grid.dims;
    let plane = nx * ny;
    let (reach, ring_len) = (pass.reach, pass.ring_len());
    let mut ring = vec![0f32; ring_len * plane];
    let mut along_x = vec![0f32; plane];
    let mut acc = vec![0f32; plane];
    // The next plane to pass along x and y into the ring.
    let mut next = first.saturating_sub(reach);
    for (i, out) in out.chunks_mut(plane).enumerate() {
        let z = first + i;
        while next < (z + reach + 1).min(nz) {
            let m = &pass.mask[next * plane..(next + 1) * plane];
            for (line, m) in along_x.chunks_mut(nx).zip(m.chunks(nx)) {
                nearest_along_line(line, m, pass.foreground, pass.grid.spacing[0]);
            }
            let slot = &mut ring[(next % ring_len) * plane..][..plane];
            for (y, row) in slot.chunks_mut(nx).enumerate() {
                min_of_shifted(row, y, ny, &pass.ky, |r| &along_x[r * nx..(r + 1) * nx]);
            }
            next += 1;
        }
        min_of_shifted(&mut acc, z, nz, &pass.kz, |r| {
            &ring[(r % ring_len) * plane..][..plane]
        });
        for (o, &a) in out.iter_mut().zip(acc.iter()) {
            o.write(u8::from(a <= pass.r2));
        }
    }
}

/// `line[p] <- (s·|p − q|)²` for the nearest `q` along the line where `mask[q]` is a feature
/// (non-zero when `foreground`, zero otherwise); infinity without one.
///
/// Positions are carried as floats (exact below 2²⁴), a missing feature as an infinite
/// position, so that each step is a select and not a branch: the boundaries of a mask are
/// where branches would be mispredicted, and they are what the scans are for.
#[inline]
fn nearest_along_line(line: &mut [f32], mask: &[u8], foreground: bool, s: f32) {
    let is_feature = |m: u8| (m != 0) == foreground;
    // Forward: the nearest feature at or before p.
    let mut last = f32::NEG_INFINITY;
    for (p, (v, &m)) in line.iter_mut().zip(mask).enumerate() {
        let p = p as f32;
        last = if is_feature(m) { p } else { last };
        let dx = (p - last) * s;
        *v = dx * dx;
    }
    // Backward: the nearest feature after p, where it is closer.
    let mut next = f32::INFINITY;
    for (p, (v, &m)) in line.iter_mut().zip(mask).enumerate().rev() {
        let p = p as f32;
        next = if is_feature(m) { p } else { next };
        let dx = (next - p) * s;
        let d = dx * dx;
        *v = if d < *v { d } else { *v };
    }
}

/// The row offsets `k` within `radius_mm` at spacing `s`, each with its squared length
/// `(k·s)²`; never more than the axis holds.
fn window(s: f32, radius_mm: f32, count: usize) -> Vec<(isize, f32)> {
    let reach = (radius_mm / s).floor();
    let reach = if reach.is_finite() && reach > 0.0 {
        (reach as usize).min(count.saturating_sub(1)) as isize
    } else {
        0
    };
    (-reach..=reach)
        .map(|k| {
            let dk = k as f32 * s;
            (k, dk * dk)
        })
        .filter(|&(_, c)| c <= radius_mm * radius_mm || c == 0.0)
        .collect()
}

/// `out = min_k row(j + k) + c_k` over the offsets `(k, c_k)` that stay inside `0..count`.
#[inline]
fn min_of_shifted<'a>(
    out: &mut [f32],
    j: usize,
    count: usize,
    offsets: &[(isize, f32)],
    row: impl Fn(usize) -> &'a [f32],
) {
    out.fill(f32::INFINITY);
    for &(k, c) in offsets {
        let r = j as isize + k;
        if r < 0 || r as usize >= count {
            continue;
        }
        for (o, &v) in out.iter_mut().zip(row(r as usize)) {
            // `min` (no value is NaN), not a select that keeps `*o`: LLVM makes that select a
            // masked store (`vmaskmovps`), which AMD cores run many times slower than a
            // plain store.
            *o = o.min(v + c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every voxel against every feature voxel.
    fn brute_force(mask: &[u8], of: Of, grid: &Grid, radius: f32) -> Vec<u8> {
        let [nx, ny, _] = grid.dims;
        let s = grid.spacing;
        let coords = |i: usize| [i % nx, (i / nx) % ny, i / (nx * ny)];
        let features: Vec<[usize; 3]> = (0..mask.len())
            .filter(|&i| (mask[i] != 0) == (of == Of::Foreground))
            .map(coords)
            .collect();
        (0..mask.len())
            .map(|i| {
                let p = coords(i);
                u8::from(features.iter().any(|q| {
                    let [dx, dy, dz]: [f32; 3] =
                        std::array::from_fn(|a| (p[a] as f32 - q[a] as f32) * s[a]);
                    dx * dx + dy * dy + dz * dz <= radius * radius
                }))
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_anisotropic_grids() {
        // Many threads, so that the planes are split into several runs.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(8)
            .build()
            .unwrap();
        pool.install(matches_brute_force);
    }

    fn matches_brute_force() {
        for (dims, spacing) in [
            ([9, 8, 7], [1.0, 2.0, 3.0]),
            ([11, 10, 6], [0.8, 0.8, 2.5]),
            ([12, 9, 1], [1.0, 1.0, 1.0]),
        ] {
            let grid = Grid::new(dims, spacing);
            // A deterministic scatter of features, sparse and dense.
            for density in [7usize, 3] {
                let mask: Vec<u8> = (0..grid.len())
                    .map(|i| u8::from((i * 2_654_435_761) % 97 < 97 / density))
                    .collect();
                for radius in [0.0, 1.0, 2.0, 2.5, 4.3, 30.0] {
                    for of in [Of::Foreground, Of::Background] {
                        assert_eq!(
                            within_radius(&mask, of, &grid, radius),
                            brute_force(&mask, of, &grid, radius),
                            "{dims:?} {spacing:?} density 1/{density} radius {radius} {of:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_to_measure_from_means_nothing_within() {
        let grid = Grid::new([3, 3, 3], [1.0; 3]);
        assert!(
            within_radius(&[0; 27], Of::Foreground, &grid, 5.0)
                .iter()
                .all(|&v| v == 0)
        );
        assert!(
            within_radius(&[1; 27], Of::Background, &grid, 5.0)
                .iter()
                .all(|&v| v == 0)
        );
    }
}
