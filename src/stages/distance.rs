//! Exact Euclidean distance transform (Felzenszwalb & Huttenlocher 2012), in mm², on
//! anisotropic grids.

use super::grid::Grid;
use rayon::prelude::*;

/// For every voxel, the squared distance in mm² to the nearest voxel where `is_feature`
/// holds. Without any feature voxel every distance is `f32::INFINITY`.
pub fn squared_distance(is_feature: &[bool], grid: &Grid) -> Vec<f32> {
    let [nx, ny, nz] = grid.dims;
    let plane = nx * ny;
    let mut d: Vec<f32> = is_feature
        .iter()
        .map(|&f| if f { 0.0 } else { f32::INFINITY })
        .collect();

    // x: contiguous lines. The input is binary (0 or infinity), so the squared distance along
    // a line is that to the nearest feature sample: two scans, no envelope.
    let sx = grid.spacing[0];
    d.par_chunks_mut(nx)
        .for_each(|line| nearest_along_line(line, sx));

    // y: lines with stride nx inside each z-plane.
    let sy = grid.spacing[1];
    d.par_chunks_mut(plane).for_each_init(
        || (Envelope::new(ny), vec![0f32; ny]),
        |(env, buf), slab| {
            for x in 0..nx {
                for (y, b) in buf.iter_mut().enumerate() {
                    *b = slab[x + y * nx];
                }
                env.transform_in_place(buf, sy);
                for (y, &b) in buf.iter().enumerate() {
                    slab[x + y * nx] = b;
                }
            }
        },
    );

    // z: lines with stride nx*ny; each y-row of lines is computed in parallel into its own
    // (z, x) block, then the blocks are copied back a row at a time.
    if nz > 1 {
        let sz = grid.spacing[2];
        let rows: Vec<Vec<f32>> = (0..ny)
            .into_par_iter()
            .map_init(
                || (Envelope::new(nz), vec![0f32; nz]),
                |(env, buf), y| {
                    let mut out = vec![0f32; nx * nz];
                    for x in 0..nx {
                        for (z, b) in buf.iter_mut().enumerate() {
                            *b = d[x + nx * (y + ny * z)];
                        }
                        env.transform_in_place(buf, sz);
                        for (z, &b) in buf.iter().enumerate() {
                            out[x + nx * z] = b;
                        }
                    }
                    out
                },
            )
            .collect();
        d.par_chunks_mut(plane).enumerate().for_each(|(z, slab)| {
            for (y, row) in rows.iter().enumerate() {
                slab[nx * y..nx * (y + 1)].copy_from_slice(&row[nx * z..nx * (z + 1)]);
            }
        });
    }
    d
}

/// `line[p] <- (s·|p − q|)²` for the nearest `q` where `line[q] == 0` (a feature; every other
/// sample is infinity on entry); infinity without one.
fn nearest_along_line(line: &mut [f32], s: f32) {
    // Forward: the nearest feature at or before p. Non-features end up positive.
    let mut last = None;
    for (p, v) in line.iter_mut().enumerate() {
        if *v == 0.0 {
            last = Some(p);
        } else if let Some(q) = last {
            let dx = (p - q) as f32 * s;
            *v = dx * dx;
        }
    }
    // Backward: the nearest feature after p, where it is closer.
    let mut next = None;
    for (p, v) in line.iter_mut().enumerate().rev() {
        if *v == 0.0 {
            next = Some(p);
        } else if let Some(q) = next {
            let dx = (q - p) as f32 * s;
            *v = v.min(dx * dx);
        }
    }
}

/// Scratch space for the 1-D lower envelope of parabolas.
struct Envelope {
    vertices: Vec<usize>,
    bounds: Vec<f32>,
    out: Vec<f32>,
}

impl Envelope {
    fn new(n: usize) -> Self {
        Self {
            vertices: vec![0; n],
            bounds: vec![0.0; n + 1],
            out: vec![0.0; n],
        }
    }

    /// `f[p] <- min_q (s·(p − q))² + f[q]` for sample spacing `s`.
    fn transform_in_place(&mut self, f: &mut [f32], s: f32) {
        if f.iter().all(|&v| v == 0.0) {
            return; // features all along the line (inside a mask): nothing moves
        }
        let n = f.len();
        let pos = |q: usize| q as f32 * s;
        let mut k: isize = -1;
        for q in 0..n {
            if !f[q].is_finite() {
                continue;
            }
            let fq = f[q] + pos(q) * pos(q);
            loop {
                if k < 0 {
                    k = 0;
                    self.vertices[0] = q;
                    self.bounds[0] = f32::NEG_INFINITY;
                    self.bounds[1] = f32::INFINITY;
                    break;
                }
                let v = self.vertices[k as usize];
                let fv = f[v] + pos(v) * pos(v);
                let cross = (fq - fv) / (2.0 * (pos(q) - pos(v)));
                if cross <= self.bounds[k as usize] {
                    k -= 1;
                    continue;
                }
                k += 1;
                self.vertices[k as usize] = q;
                self.bounds[k as usize] = cross;
                self.bounds[k as usize + 1] = f32::INFINITY;
                break;
            }
        }
        if k < 0 {
            return; // no finite sample: the line stays at infinity
        }
        let mut j = 0usize;
        for p in 0..n {
            while self.bounds[j + 1] < pos(p) {
                j += 1;
            }
            let v = self.vertices[j];
            let dx = pos(p) - pos(v);
            self.out[p] = dx * dx + f[v];
        }
        f.copy_from_slice(&self.out[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_brute_force_on_anisotropic_grid() {
        let grid = Grid::new([7, 6, 5], [1.0, 2.0, 3.0]);
        let mut feature = vec![false; grid.len()];
        for &(x, y, z) in &[(1, 1, 1), (5, 4, 3), (0, 5, 4)] {
            feature[grid.index(x, y, z)] = true;
        }
        let d = squared_distance(&feature, &grid);
        for z in 0..5 {
            for y in 0..6 {
                for x in 0..7 {
                    let best = [(1, 1, 1), (5, 4, 3), (0, 5, 4)]
                        .iter()
                        .map(|&(a, b, c): &(i32, i32, i32)| {
                            let dx = (x as i32 - a) as f32;
                            let dy = (y as i32 - b) as f32 * 2.0;
                            let dz = (z as i32 - c) as f32 * 3.0;
                            dx * dx + dy * dy + dz * dz
                        })
                        .fold(f32::INFINITY, f32::min);
                    let got = d[grid.index(x, y, z)];
                    assert!((got - best).abs() < 1e-3, "({x},{y},{z}): {got} vs {best}");
                }
            }
        }
    }

    #[test]
    fn no_feature_means_infinite() {
        let grid = Grid::new([3, 3, 3], [1.0; 3]);
        let d = squared_distance(&[false; 27], &grid);
        assert!(d.iter().all(|v| v.is_infinite()));
    }
}
