//! Binary morphology on masks stored as `u8` (0 or 1): spherical erosion and dilation in mm,
//! the largest connected component, and hole filling. All use 6-connectivity.

use super::distance::{Of, within_radius};
use super::grid::Grid;
use rayon::prelude::*;

/// Keep the voxels of `mask` farther than `radius_mm` from any background voxel.
pub fn erode(mask: &[u8], grid: &Grid, radius_mm: f32) -> Vec<u8> {
    within_box(mask, grid, radius_mm, |mask, grid| {
        let mut near_background = within_radius(mask, Of::Background, grid, radius_mm);
        near_background
            .par_iter_mut()
            .zip(mask)
            .for_each(|(n, &m)| *n = u8::from(m != 0 && *n == 0));
        near_background
    })
}

/// Add every voxel within `radius_mm` of the mask.
pub fn dilate(mask: &[u8], grid: &Grid, radius_mm: f32) -> Vec<u8> {
    within_box(mask, grid, radius_mm, |mask, grid| {
        within_radius(mask, Of::Foreground, grid, radius_mm)
    })
}

/// Applies `op` to the box around the mask's voxels grown by `radius_mm` and one voxel, and
/// zero elsewhere. For an erosion or dilation by that radius this is the same result: nothing
/// outside the box is within the radius of the mask, and every voxel in it sees all the
/// background within the radius; so it is for components and holes (radius 0), which the box
/// holds whole. A brain mask fills a third of a head's grid, so the distance passes do a
/// third of the work.
fn within_box(
    mask: &[u8],
    grid: &Grid,
    radius_mm: f32,
    op: impl Fn(&[u8], &Grid) -> Vec<u8>,
) -> Vec<u8> {
    let margin: [usize; 3] =
        std::array::from_fn(|a| (radius_mm / grid.spacing[a]).ceil().max(0.0) as usize + 1);
    let Some((lo, hi)) = bounding_box(mask, grid, margin) else {
        return vec![0; mask.len()];
    };
    if lo == [0; 3] && hi == grid.dims {
        return op(mask, grid);
    }
    let sub = Grid::new(std::array::from_fn(|a| hi[a] - lo[a]), grid.spacing);
    let cropped = crop(mask, grid, lo, &sub);
    let result = op(&cropped, &sub);
    drop(cropped);
    paste(&result, &sub, lo, grid)
}

/// The voxels of `mask` in the box of `sub`'s size from `lo`. The rows are appended one by
/// one: the box is written once, and never zeroed first.
fn crop(mask: &[u8], grid: &Grid, lo: [usize; 3], sub: &Grid) -> Vec<u8> {
    let [nx, ny, _] = grid.dims;
    let [sx, sy, sz] = sub.dims;
    let mut cropped = Vec::with_capacity(sub.len());
    for z in lo[2]..lo[2] + sz {
        for y in lo[1]..lo[1] + sy {
            let start = lo[0] + nx * (y + ny * z);
            cropped.extend_from_slice(&mask[start..start + sx]);
        }
    }
    cropped
}

/// `boxed` (on `sub`) placed at `lo` on `grid`, zero elsewhere; each voxel is written once.
fn paste(boxed: &[u8], sub: &Grid, lo: [usize; 3], grid: &Grid) -> Vec<u8> {
    let [nx, ny, nz] = grid.dims;
    let [sx, sy, sz] = sub.dims;
    let mut out = Vec::with_capacity(grid.len());
    let zeros = |out: &mut Vec<u8>, n: usize| out.resize(out.len() + n, 0);
    zeros(&mut out, nx * ny * lo[2]);
    for rows in boxed.chunks(sx * sy) {
        zeros(&mut out, nx * lo[1]);
        for row in rows.chunks(sx) {
            zeros(&mut out, lo[0]);
            out.extend_from_slice(row);
            zeros(&mut out, nx - lo[0] - sx);
        }
        zeros(&mut out, nx * (ny - lo[1] - sy));
    }
    zeros(&mut out, nx * ny * (nz - lo[2] - sz));
    out
}

/// The smallest box holding every non-zero voxel, grown by `margin` voxels per axis and cut
/// to the grid: `(lower, upper)`, upper exclusive; `None` for an empty mask.
fn bounding_box(mask: &[u8], grid: &Grid, margin: [usize; 3]) -> Option<([usize; 3], [usize; 3])> {
    let [nx, ny, _] = grid.dims;
    let (lo, hi) = mask
        .par_chunks(nx * ny)
        .enumerate()
        .filter_map(|(z, slab)| {
            let mut b: Option<([usize; 3], [usize; 3])> = None;
            for (y, line) in slab.chunks(nx).enumerate() {
                let Some((first, last)) = nonzero_span(line) else {
                    continue;
                };
                let (lo, hi) = b.get_or_insert(([first, y, z], [last, y, z]));
                lo[0] = lo[0].min(first);
                hi[0] = hi[0].max(last);
                hi[1] = y;
            }
            b
        })
        .reduce_with(|(alo, ahi), (blo, bhi)| {
            (
                std::array::from_fn(|a| alo[a].min(blo[a])),
                std::array::from_fn(|a| ahi[a].max(bhi[a])),
            )
        })?;
    Some((
        std::array::from_fn(|a| lo[a].saturating_sub(margin[a])),
        std::array::from_fn(|a| (hi[a] + 1 + margin[a]).min(grid.dims[a])),
    ))
}

/// The first and last index of a non-zero byte of `line`. Bytes are tested a block at a time
/// (an OR over the block, which vectorises) before the block found is searched.
fn nonzero_span(line: &[u8]) -> Option<(usize, usize)> {
    const BLOCK: usize = 32;
    let any = |block: &[u8]| block.iter().fold(0, |a, &b| a | b) != 0;
    let first_block = line.chunks(BLOCK).position(any)? * BLOCK;
    let first = first_block + line[first_block..].iter().position(|&m| m != 0)?;
    let last_block = line.rchunks(BLOCK).position(any)?;
    let start = line.len().saturating_sub((last_block + 1) * BLOCK);
    let end = line.len() - last_block * BLOCK;
    let last = start + line[start..end].iter().rposition(|&m| m != 0)?;
    Some((first, last))
}

/// The largest 6-connected component of `mask` (all zeros if the mask is empty).
pub fn largest_component(mask: &[u8], grid: &Grid) -> Vec<u8> {
    within_box(mask, grid, 0.0, largest_component_of)
}

fn largest_component_of(mask: &[u8], grid: &Grid) -> Vec<u8> {
    let foreground = |j: usize| mask[j] != 0;
    let mut stack = Vec::new();
    let mut seen = vec![0u8; mask.len()];
    // The first component, in index order, of the largest size.
    let mut best = (0usize, 0usize);
    for start in 0..mask.len() {
        if foreground(start) && seen[start] == 0 {
            let size = flood(grid, start, foreground, &mut seen, &mut stack);
            if size > best.1 {
                best = (start, size);
            }
        }
    }
    let mut out = vec![0u8; mask.len()];
    if best.1 > 0 {
        flood(grid, best.0, foreground, &mut out, &mut stack);
    }
    out
}

/// Fill every background region of `mask` that does not touch the border of the grid.
pub fn fill_holes(mask: &[u8], grid: &Grid) -> Vec<u8> {
    // Everything outside the mask's box is background joined to the border, and so is the
    // box's one-voxel rim: the box decides alone.
    within_box(mask, grid, 0.0, fill_holes_of)
}

fn fill_holes_of(mask: &[u8], grid: &Grid) -> Vec<u8> {
    let background = |j: usize| mask[j] == 0;
    let mut stack = Vec::new();
    let mut outside = vec![0u8; mask.len()];
    let [nx, ny, nz] = grid.dims;
    for z in 0..nz {
        for y in 0..ny {
            let row = grid.index(0, y, z);
            // A row on a face of the grid is border throughout; any other, at its two ends.
            let face = z == 0 || z + 1 == nz || y == 0 || y + 1 == ny;
            let step = if face { 1 } else { (nx - 1).max(1) };
            for i in (0..nx).step_by(step).map(|x| row + x) {
                if background(i) && outside[i] == 0 {
                    flood(grid, i, background, &mut outside, &mut stack);
                }
            }
        }
    }
    outside.par_iter_mut().for_each(|o| *o = 1 - *o);
    outside
}

/// Sets `filled` to 1 on every voxel 6-connected to `start` through voxels where `open`
/// holds and `filled` is 0, and returns how many it set; `start` must be such a voxel.
///
/// A scanline fill: each voxel taken from the stack grows into the whole run of such voxels
/// along x, and every run of them beside it (in the rows above and below, in y and in z)
/// gets one voxel on the stack. Rows are read in memory order, and the stack holds runs
/// rather than voxels.
fn flood(
    grid: &Grid,
    start: usize,
    open: impl Fn(usize) -> bool,
    filled: &mut [u8],
    stack: &mut Vec<usize>,
) -> usize {
    let [nx, ny, nz] = grid.dims;
    let plane = nx * ny;
    let fillable = |filled: &[u8], j: usize| filled[j] == 0 && open(j);
    let mut count = 0;
    stack.clear();
    stack.push(start);
    while let Some(i) = stack.pop() {
        if !fillable(filled, i) {
            continue;
        }
        let row = i - i % nx;
        let (mut a, mut b) = (i, i);
        while a > row && fillable(filled, a - 1) {
            a -= 1;
        }
        while b + 1 < row + nx && fillable(filled, b + 1) {
            b += 1;
        }
        filled[a..=b].fill(1);
        count += b - a + 1;
        let (y, z) = ((i / nx) % ny, i / plane);
        let beside = [
            (y > 0).then(|| a - nx),
            (y + 1 < ny).then(|| a + nx),
            (z > 0).then(|| a - plane),
            (z + 1 < nz).then(|| a + plane),
        ];
        for from in beside.into_iter().flatten() {
            let mut in_run = false;
            for j in from..=from + (b - a) {
                let fill = fillable(filled, j);
                if fill && !in_run {
                    stack.push(j);
                }
                in_run = fill;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_spans_match_a_plain_search() {
        for len in [0, 1, 5, 31, 32, 33, 64, 100, 197] {
            for (a, b) in [
                (0, 0),
                (0, len),
                (3, 4),
                (31, 33),
                (len / 2, len),
                (1, len / 3),
            ] {
                let line: Vec<u8> = (0..len).map(|i| u8::from(i == a || i + 1 == b)).collect();
                let expected = line
                    .iter()
                    .position(|&m| m != 0)
                    .zip(line.iter().rposition(|&m| m != 0));
                assert_eq!(nonzero_span(&line), expected, "length {len}, ({a}, {b})");
            }
        }
    }

    fn ball(grid: &Grid, c: [f32; 3], r: f32) -> Vec<u8> {
        let mut m = vec![0u8; grid.len()];
        for z in 0..grid.dims[2] {
            for y in 0..grid.dims[1] {
                for x in 0..grid.dims[0] {
                    let d2 = (x as f32 - c[0]).powi(2)
                        + (y as f32 - c[1]).powi(2)
                        + (z as f32 - c[2]).powi(2);
                    m[grid.index(x, y, z)] = u8::from(d2 <= r * r);
                }
            }
        }
        m
    }

    #[test]
    fn erode_then_dilate_roughly_restores_a_ball() {
        let grid = Grid::new([31, 31, 31], [1.0; 3]);
        let b = ball(&grid, [15.0; 3], 10.0);
        let e = erode(&b, &grid, 3.0);
        let count = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
        assert!(count(&e) < count(&b));
        assert!(
            e.iter().zip(&b).all(|(&e, &b)| e <= b),
            "erosion grew the mask"
        );
        assert_eq!(e[grid.index(15, 15, 15)], 1);
        assert_eq!(
            e[grid.index(24, 15, 15)],
            0,
            "9 mm from centre is within 3 mm of the edge"
        );
        let d = dilate(&e, &grid, 3.0);
        let lost = b.iter().zip(&d).filter(|(a, b)| a != b).count();
        assert!(lost * 20 < count(&b), "opening changed {lost} voxels");
    }

    #[test]
    fn cropping_to_the_mask_gives_what_the_whole_grid_gives() {
        // A ball off-centre on an anisotropic grid, and one touching the grid's border: the
        // result on the box equals that on the whole grid.
        let grid = Grid::new([40, 36, 30], [1.0, 1.2, 2.0]);
        for (centre, r) in [([12.0, 20.0, 9.0], 6.0), ([2.0, 3.0, 1.0], 5.0)] {
            let b = ball(&grid, centre, r);
            for radius in [1.0, 2.5, 4.0] {
                let cropped = dilate(&b, &grid, radius);
                let expected = within_radius(&b, Of::Foreground, &grid, radius);
                assert_eq!(cropped, expected, "dilate {radius} mm around {centre:?}");

                let cropped = erode(&b, &grid, radius);
                let near_background = within_radius(&b, Of::Background, &grid, radius);
                let expected: Vec<u8> = b
                    .iter()
                    .zip(&near_background)
                    .map(|(&m, &n)| u8::from(m != 0 && n == 0))
                    .collect();
                assert_eq!(cropped, expected, "erode {radius} mm around {centre:?}");
            }
        }
        assert!(
            erode(&vec![0; grid.len()], &grid, 2.0)
                .iter()
                .all(|&v| v == 0)
        );
        // Components and holes: the box gives what the whole grid gives.
        let mut m = ball(&grid, [20.0, 18.0, 15.0], 8.0);
        m[grid.index(20, 18, 15)] = 0; // a hole
        m[grid.index(30, 18, 15)] = 1; // a speck
        assert_eq!(
            largest_component(&m, &grid),
            largest_component_of(&m, &grid)
        );
        assert_eq!(fill_holes(&m, &grid), fill_holes_of(&m, &grid));
        assert_eq!(fill_holes(&m, &grid)[grid.index(20, 18, 15)], 1);
    }

    /// Breadth-first labelling, voxel by voxel: the components of `mask` where `open`.
    fn components(grid: &Grid, open: impl Fn(usize) -> bool) -> Vec<Vec<usize>> {
        let mut seen = vec![false; grid.len()];
        let mut found = Vec::new();
        for start in 0..grid.len() {
            if !open(start) || seen[start] {
                continue;
            }
            seen[start] = true;
            let mut queue = std::collections::VecDeque::from([start]);
            let mut members = Vec::new();
            while let Some(i) = queue.pop_front() {
                members.push(i);
                grid.for_each_neighbour(i, |j| {
                    if open(j) && !seen[j] {
                        seen[j] = true;
                        queue.push_back(j);
                    }
                });
            }
            found.push(members);
        }
        found
    }

    #[test]
    fn scanline_fills_match_a_breadth_first_search() {
        for dims in [[17, 13, 11], [1, 9, 8], [12, 1, 7], [30, 20, 1]] {
            let grid = Grid::new(dims, [1.0; 3]);
            // Scattered voxels around and above the percolation threshold: many small
            // components, one spanning, and holes of every shape.
            for density in [20, 35, 55, 75] {
                let mask: Vec<u8> = (0..grid.len())
                    .map(|i| u8::from((i * 2_654_435_761) % 101 < density))
                    .collect();
                let mut expected = vec![0u8; grid.len()];
                let foreground = components(&grid, |i| mask[i] != 0);
                // The first of the largest, in index order of their first voxel.
                let largest = foreground
                    .iter()
                    .rev()
                    .max_by_key(|c| c.len())
                    .map_or(&[][..], |c| c);
                largest.iter().for_each(|&i| expected[i] = 1);
                assert_eq!(
                    largest_component_of(&mask, &grid),
                    expected,
                    "{dims:?} density {density}"
                );

                let mut expected = vec![1u8; grid.len()];
                for c in components(&grid, |i| mask[i] == 0) {
                    if c.iter().any(|&i| grid.on_border(i)) {
                        c.iter().for_each(|&i| expected[i] = 0);
                    }
                }
                assert_eq!(
                    fill_holes_of(&mask, &grid),
                    expected,
                    "{dims:?} density {density}"
                );
            }
        }
    }

    #[test]
    fn keeps_largest_component_and_fills_holes() {
        let grid = Grid::new([20, 20, 20], [1.0; 3]);
        let mut m = ball(&grid, [10.0; 3], 6.0);
        m[grid.index(1, 1, 1)] = 1; // a speck
        m[grid.index(10, 10, 10)] = 0; // a hole
        let l = largest_component(&m, &grid);
        assert_eq!(l[grid.index(1, 1, 1)], 0);
        let f = fill_holes(&l, &grid);
        assert_eq!(f[grid.index(10, 10, 10)], 1);
        assert_eq!(f[grid.index(0, 0, 0)], 0);
    }
}
