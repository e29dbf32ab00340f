//! Binary morphology on masks stored as `u8` (0 or 1): spherical erosion and dilation in mm,
//! the largest connected component, and hole filling. All use 6-connectivity.

use super::distance::squared_distance;
use super::grid::Grid;
use rayon::prelude::*;
use std::collections::VecDeque;

/// Keep the voxels of `mask` farther than `radius_mm` from any background voxel.
pub fn erode(mask: &[u8], grid: &Grid, radius_mm: f32) -> Vec<u8> {
    let background: Vec<bool> = mask.par_iter().map(|&m| m == 0).collect();
    let d = squared_distance(&background, grid);
    let r2 = radius_mm * radius_mm;
    mask.par_iter()
        .zip(d.par_iter())
        .map(|(&m, &d)| u8::from(m != 0 && d > r2))
        .collect()
}

/// Add every voxel within `radius_mm` of the mask.
pub fn dilate(mask: &[u8], grid: &Grid, radius_mm: f32) -> Vec<u8> {
    let foreground: Vec<bool> = mask.par_iter().map(|&m| m != 0).collect();
    let d = squared_distance(&foreground, grid);
    let r2 = radius_mm * radius_mm;
    d.par_iter().map(|&d| u8::from(d <= r2)).collect()
}

/// The largest 6-connected component of `mask` (all zeros if the mask is empty).
pub fn largest_component(mask: &[u8], grid: &Grid) -> Vec<u8> {
    let mut label = vec![0u32; mask.len()];
    let mut queue = VecDeque::new();
    let mut best = (0u32, 0usize);
    let mut next = 0u32;
    for start in 0..mask.len() {
        if mask[start] == 0 || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        queue.push_back(start);
        let mut size = 0usize;
        while let Some(i) = queue.pop_front() {
            size += 1;
            grid.for_each_neighbour(i, |j| {
                if mask[j] != 0 && label[j] == 0 {
                    label[j] = next;
                    queue.push_back(j);
                }
            });
        }
        if size > best.1 {
            best = (next, size);
        }
    }
    label
        .par_iter()
        .map(|&l| u8::from(l != 0 && l == best.0))
        .collect()
}

/// Fill every background region of `mask` that does not touch the border of the grid.
pub fn fill_holes(mask: &[u8], grid: &Grid) -> Vec<u8> {
    let mut outside = vec![false; mask.len()];
    let mut queue: VecDeque<usize> = (0..mask.len())
        .filter(|&i| mask[i] == 0 && grid.on_border(i))
        .collect();
    for &i in &queue {
        outside[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        grid.for_each_neighbour(i, |j| {
            if mask[j] == 0 && !outside[j] {
                outside[j] = true;
                queue.push_back(j);
            }
        });
    }
    outside.par_iter().map(|&o| u8::from(!o)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
