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
use rayon::prelude::*;

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
pub fn within_radius(mask: &[u8], of: Of, grid: &Grid, radius_mm: f32) -> Vec<u8> {
    let [nx, ny, nz] = grid.dims;
    let plane = nx * ny;
    let r2 = radius_mm * radius_mm;
    if mask.is_empty() {
        return Vec::new();
    }

    // x: the squared distance along each line to its nearest feature.
    let foreground = of == Of::Foreground;
    let sx = grid.spacing[0];
    let mut d = vec![0f32; mask.len()];
    d.par_chunks_mut(nx)
        .zip(mask.par_chunks(nx))
        .for_each(|(line, m)| nearest_along_line(line, m, foreground, sx));

    // y: within each z-plane, the minimum over rows up to the radius away.
    let ky = window(grid.spacing[1], radius_mm, ny);
    d.par_chunks_mut(plane).for_each_init(
        || vec![0f32; plane],
        |scratch, slab| {
            for (y, row) in scratch.chunks_mut(nx).enumerate() {
                min_of_shifted(row, slab, nx, y, &ky);
            }
            slab.copy_from_slice(scratch);
        },
    );

    // z: the minimum over planes up to the radius away, thresholded into the output.
    let kz = window(grid.spacing[2], radius_mm, nz);
    let mut out = vec![0u8; mask.len()];
    out.par_chunks_mut(plane).enumerate().for_each_init(
        || vec![0f32; plane],
        |acc, (z, o)| {
            min_of_shifted(acc, &d, plane, z, &kz);
            for (o, &a) in o.iter_mut().zip(acc.iter()) {
                *o = u8::from(a <= r2);
            }
        },
    );
    out
}

/// `line[p] <- (s·|p − q|)²` for the nearest `q` along the line where `mask[q]` is a feature
/// (non-zero when `foreground`, zero otherwise); infinity without one.
fn nearest_along_line(line: &mut [f32], mask: &[u8], foreground: bool, s: f32) {
    let is_feature = |m: u8| (m != 0) == foreground;
    // Forward: the nearest feature at or before p.
    let mut last = None;
    for (p, (v, &m)) in line.iter_mut().zip(mask).enumerate() {
        *v = if is_feature(m) {
            last = Some(p);
            0.0
        } else if let Some(q) = last {
            let dx = (p - q) as f32 * s;
            dx * dx
        } else {
            f32::INFINITY
        };
    }
    // Backward: the nearest feature after p, where it is closer.
    let mut next = None;
    for (p, (v, &m)) in line.iter_mut().zip(mask).enumerate().rev() {
        if is_feature(m) {
            next = Some(p);
        } else if let Some(q) = next {
            let dx = (q - p) as f32 * s;
            let d = dx * dx;
            if d < *v {
                *v = d;
            }
        }
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

/// `out = min_k rows[j + k] + c_k` over the offsets `(k, c_k)` that stay inside `rows`,
/// which holds rows of `width`.
fn min_of_shifted(out: &mut [f32], rows: &[f32], width: usize, j: usize, offsets: &[(isize, f32)]) {
    let count = rows.len() / width;
    out.fill(f32::INFINITY);
    for &(k, c) in offsets {
        let r = j as isize + k;
        if r < 0 || r as usize >= count {
            continue;
        }
        let row = &rows[r as usize * width..(r as usize + 1) * width];
        for (o, &v) in out.iter_mut().zip(row) {
            let t = v + c;
            if t < *o {
                *o = t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every voxel against every feature voxel.
    fn brute_force(mask: &[u8], of: Of, grid: &Grid, radius: f32) -> Vec<u8> {
        let [nx, ny, nz] = grid.dims;
        let s = grid.spacing;
        let coords = |i: usize| [i % nx, (i / nx) % ny, i / (nx * ny)];
        let features: Vec<[usize; 3]> = (0..mask.len())
            .filter(|&i| (mask[i] != 0) == (of == Of::Foreground))
            .map(coords)
            .collect();
        assert!(nz > 0);
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
