//! Cubic B-spline fields over a volume, fit to scattered samples by B-spline approximation
//! (Lee, Wolberg & Shin 1997, "Scattered data interpolation with multilevel B-splines": the
//! scattered-data approximation N4 fits its bias field with).
//!
//! A [`Lattice`] of `spans + 3` control points per axis covers the volume's extent in mm;
//! every point is influenced by the 4×4×4 control points around it. [`Basis`] holds, once per
//! set of sample points, each point's cell and per-axis weights, so that fitting to the
//! samples, repeated every iteration, is a plain loop; a lattice is evaluated on a regular grid
//! (the samples' grid, or every voxel) separably, an axis at a time.

use super::grid::Grid;
use multiversion::multiversion;
use rayon::prelude::*;

/// The four cubic B-spline basis functions at `t` in `[0, 1)`.
#[inline]
fn weights(t: f64) -> [f64; 4] {
    let s = 1.0 - t;
    let t2 = t * t;
    let t3 = t2 * t;
    [
        s * s * s / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    ]
}

/// The spans and coordinate scale of a lattice over a volume's extent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Cells per axis (control points per axis: `spans + 3`).
    pub spans: [usize; 3],
    /// Lattice units per mm along each axis.
    scale: [f64; 3],
}

impl Shape {
    /// A lattice of `spans` cells per axis over `[0, extent_mm]` on each axis.
    pub fn new(spans: [usize; 3], extent_mm: [f64; 3]) -> Shape {
        let spans = spans.map(|s| s.max(1));
        let scale = std::array::from_fn(|a| {
            if extent_mm[a] > 0.0 {
                spans[a] as f64 / extent_mm[a]
            } else {
                0.0
            }
        });
        Shape { spans, scale }
    }

    /// Control points per axis.
    pub fn points_per_axis(&self) -> [usize; 3] {
        self.spans.map(|s| s + 3)
    }

    /// Number of control points.
    pub fn control_points(&self) -> usize {
        self.points_per_axis().iter().product()
    }

    /// The cell and basis weights of coordinate `mm` along `axis`.
    #[inline]
    fn locate(&self, axis: usize, mm: f64) -> (usize, [f64; 4]) {
        let u = (mm * self.scale[axis]).clamp(0.0, self.spans[axis] as f64);
        let cell = (u.floor() as usize).min(self.spans[axis] - 1);
        (cell, weights(u - cell as f64))
    }

    /// Flat index of control point `(i, j, k)`.
    #[inline]
    fn index(&self, i: usize, j: usize, k: usize) -> usize {
        let [px, py, _] = self.points_per_axis();
        i + px * (j + py * k)
    }

    /// The same extent with `factor` times as many cells per axis.
    pub fn refined(&self, factor: usize) -> Shape {
        Shape {
            spans: self.spans.map(|s| s * factor),
            scale: self.scale.map(|s| s * factor as f64),
        }
    }
}

/// Where each sample point falls on one lattice shape: its cell and per-axis weights.
#[derive(Debug)]
pub struct Basis {
    shape: Shape,
    /// Flat index of the first of the point's 4×4×4 control points.
    first: Vec<usize>,
    /// Per point, the x, y and z weights.
    weights: Vec<[[f64; 4]; 3]>,
    /// Per control point, Σ over points of the squared tensor weight (the approximation's
    /// denominator, which depends on the points only).
    omega: Vec<f64>,
}

impl Basis {
    /// The basis of `points` (mm) on `shape`.
    pub fn new(shape: Shape, points: &[[f64; 3]]) -> Basis {
        let mut first = Vec::with_capacity(points.len());
        let mut all = Vec::with_capacity(points.len());
        let mut omega = vec![0f64; shape.control_points()];
        for p in points {
            let (i, wx) = shape.locate(0, p[0]);
            let (j, wy) = shape.locate(1, p[1]);
            let (k, wz) = shape.locate(2, p[2]);
            let base = shape.index(i, j, k);
            for_each_row(&shape, base, &wy, &wz, |start, wzy| {
                for (o, x) in row_of_four(&mut omega, start).iter_mut().zip(&wx) {
                    let w = wzy * x;
                    *o += w * w;
                }
            });
            first.push(base);
            all.push([wx, wy, wz]);
        }
        Basis {
            shape,
            first,
            weights: all,
            omega,
        }
    }

    /// The lattice shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The B-spline approximation of `values` at the points: each point proposes, for each
    /// of its 64 control points, the coefficient that would reproduce its value alone
    /// (`w·z / Σw²`); each control point takes the average of the proposals weighted by `w²`.
    /// Control points no sample influences stay 0. This is a local approximation, not a
    /// least-squares fit: approximating the residual again, and adding, converges on the data.
    pub fn approximate(&self, values: &[f64]) -> Lattice {
        let mut delta = vec![0f64; self.shape.control_points()];
        propose(self, values, &mut delta);
        let coefficients = delta
            .iter()
            .zip(&self.omega)
            .map(|(&d, &o)| if o > 0.0 { d / o } else { 0.0 })
            .collect();
        Lattice {
            shape: self.shape,
            coefficients,
        }
    }

    /// `lattice` (of this basis's shape) evaluated at every point, one point at a time: the
    /// tests' reference for [`Lattice::values_on`].
    #[cfg(test)]
    pub fn evaluate(&self, lattice: &Lattice) -> Vec<f64> {
        debug_assert_eq!(lattice.shape, self.shape);
        self.first
            .iter()
            .zip(&self.weights)
            .map(|(&base, [wx, wy, wz])| {
                let mut sum = 0.0;
                for_each_row(&self.shape, base, wy, wz, |start, wzy| {
                    let row = &lattice.coefficients[start..start + 4];
                    for (k, x) in row.iter().zip(wx) {
                        sum += wzy * x * k;
                    }
                });
                sum
            })
            .collect()
    }
}

/// Adds to `delta` every point's proposals, weighted: `w² · (w·z / Σw²)` for each of its 64
/// control points, in point order. Compiled twice, and the AVX2 build chosen where the CPU
/// has it: a row of four control points is one vector of f64, and the operations and their
/// order are the same, so the same sums.
#[multiversion(targets("x86_64+avx2"))]
fn propose(basis: &Basis, values: &[f64], delta: &mut [f64]) {
    for ((&base, w), &z) in basis.first.iter().zip(&basis.weights).zip(values) {
        let norm: f64 = w
            .iter()
            .map(|axis| axis.iter().map(|v| v * v).sum::<f64>())
            .product();
        // w² · (w · z / Σw²) = w³ · z / Σw², and the tensor weight's cube is the product of
        // the axes' cubes: cubed once per axis, with z / Σw² folded into z's.
        let mut cubes = w.map(|axis| axis.map(|v| v * v * v));
        let ratio = z / norm;
        cubes[2].iter_mut().for_each(|c| *c *= ratio);
        for_each_row(&basis.shape, base, &cubes[1], &cubes[2], |start, wzy| {
            for (d, wx) in row_of_four(delta, start).iter_mut().zip(&cubes[0]) {
                *d += wzy * wx;
            }
        });
    }
}

/// The 64 control points of a point whose first control point is `base` lie in 16 rows of
/// four consecutive ones along x: calls `f(flat index of the row's first, wz · wy)` for each,
/// z-major. A row at a time, the loops over a point's support check bounds once per row and
/// vectorise.
#[inline]
fn for_each_row(
    shape: &Shape,
    base: usize,
    wy: &[f64; 4],
    wz: &[f64; 4],
    mut f: impl FnMut(usize, f64),
) {
    for (c, z) in wz.iter().enumerate() {
        for (b, y) in wy.iter().enumerate() {
            f(row_start(shape, base, b, c), z * y);
        }
    }
}

/// The flat index of the first control point of row `b` (along y) of layer `c` (along z) of
/// the support whose first control point is `base`.
#[inline]
fn row_start(shape: &Shape, base: usize, b: usize, c: usize) -> usize {
    let [px, py, _] = shape.points_per_axis();
    base + px * (b + py * c)
}

/// The four control points of the row starting at `start`.
#[inline]
fn row_of_four(values: &mut [f64], start: usize) -> &mut [f64; 4] {
    (&mut values[start..start + 4])
        .try_into()
        .expect("a range of four is four long")
}

/// Control-point coefficients of a cubic B-spline field.
#[derive(Debug, Clone, PartialEq)]
pub struct Lattice {
    shape: Shape,
    coefficients: Vec<f64>,
}

impl Lattice {
    /// A zero field of `shape`.
    pub fn zeros(shape: Shape) -> Lattice {
        Lattice {
            shape,
            coefficients: vec![0.0; shape.control_points()],
        }
    }

    /// The lattice shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Adds `other` (of the same shape) to this field.
    pub fn add(&mut self, other: &Lattice) {
        debug_assert_eq!(self.shape, other.shape);
        self.coefficients
            .iter_mut()
            .zip(&other.coefficients)
            .for_each(|(a, b)| *a += b);
    }

    /// Where each voxel centre of `grid` falls on this lattice, per axis: the first of its
    /// four control points and their weights.
    fn voxel_tables(&self, grid: &Grid) -> [Vec<(usize, [f64; 4])>; 3] {
        std::array::from_fn(|a| {
            (0..grid.dims[a])
                .map(|k| self.shape.locate(a, k as f64 * grid.spacing[a] as f64))
                .collect()
        })
    }

    /// `plane <- Σ_c wz[c] · layer(k + c)`: the lattice contracted along z, `px · py` values.
    fn contract_z(&self, (k, wz): (usize, [f64; 4]), plane: &mut Vec<f64>) {
        let [px, py, _] = self.shape.points_per_axis();
        plane.clear();
        plane.resize(px * py, 0.0);
        for (c, w) in wz.iter().enumerate() {
            let layer = &self.coefficients[(k + c) * px * py..][..px * py];
            plane.iter_mut().zip(layer).for_each(|(p, v)| *p += w * v);
        }
    }

    /// `row <- Σ_b wy[b] · plane_line(j + b)`: a z-contracted plane contracted along y, `px`
    /// values.
    fn contract_y(&self, plane: &[f64], (j, wy): (usize, [f64; 4]), row: &mut Vec<f64>) {
        let px = self.shape.points_per_axis()[0];
        row.clear();
        row.resize(px, 0.0);
        for (b, w) in wy.iter().enumerate() {
            let line = &plane[(j + b) * px..][..px];
            row.iter_mut().zip(line).for_each(|(r, v)| *r += w * v);
        }
    }

    /// This lattice at every point of the regular grid whose lines along each axis lie at
    /// `axes` (mm), x-fastest. Separably: per z line the lattice is contracted along z, per
    /// y line along y, and each point costs four multiply-adds, not the 64 of a point alone.
    pub fn values_on(&self, axes: &[Vec<f64>; 3]) -> Vec<f64> {
        let [tx, ty, tz]: [Vec<(usize, [f64; 4])>; 3] =
            std::array::from_fn(|a| axes[a].iter().map(|&mm| self.shape.locate(a, mm)).collect());
        let mut out = Vec::with_capacity(tx.len() * ty.len() * tz.len());
        let (mut plane, mut row) = (Vec::new(), Vec::new());
        for &z in &tz {
            self.contract_z(z, &mut plane);
            for &y in &ty {
                self.contract_y(&plane, y, &mut row);
                out.extend(tx.iter().map(|&(i, wx)| {
                    wx[0] * row[i] + wx[1] * row[i + 1] + wx[2] * row[i + 2] + wx[3] * row[i + 3]
                }));
            }
        }
        out
    }
}

/// `Σ lattices` at every voxel centre of `grid` (x-fastest), then `map_row` on each row of
/// sums: each lattice's value is added as `f32`, in order, to a sum from zero. Separably:
/// per slice each lattice is contracted along z, per row along y, and each voxel costs four
/// multiply-adds per lattice. Each voxel is written once, never zeroed first, so a field of
/// several levels and its transform take one pass over the volume.
pub fn sum_on_grid(
    lattices: &[Lattice],
    grid: &Grid,
    map_row: impl Fn(&mut [f32]) + Sync,
) -> Vec<f32> {
    let [nx, ny, _] = grid.dims;
    let tables: Vec<_> = lattices
        .iter()
        .map(|l| {
            let [tx, ty, tz] = l.voxel_tables(grid);
            (AlongX::new(&tx), [ty, tz])
        })
        .collect();
    let mut out = Vec::with_capacity(grid.len());
    out.spare_capacity_mut()[..grid.len()]
        .par_chunks_mut((nx * ny).max(1))
        .enumerate()
        .for_each(|(z, slab)| {
            let planes: Vec<Vec<f64>> = lattices
                .iter()
                .zip(&tables)
                .map(|(lattice, (_, [_, tz]))| {
                    let mut plane = Vec::new();
                    lattice.contract_z(tz[z], &mut plane);
                    plane
                })
                .collect();
            let mut row = Vec::new();
            let mut sum = vec![0f32; nx];
            for (y, out_row) in slab.chunks_mut(nx).enumerate() {
                sum.fill(0.0);
                for ((lattice, plane), (tx, [ty, _])) in lattices.iter().zip(&planes).zip(&tables) {
                    lattice.contract_y(plane, ty[y], &mut row);
                    add_along_x(&mut sum, &row, tx);
                }
                map_row(&mut sum);
                for (o, &s) in out_row.iter_mut().zip(&sum) {
                    o.write(s);
                }
            }
        });
    // SAFETY: the slabs cover `..grid.len()`, and each row of each slab is written whole.
    unsafe { out.set_len(grid.len()) };
    out
}

/// Where a row of voxel centres falls on a lattice along x, laid out for a loop that
/// vectorises: the voxels in runs that share a cell, and each of the four weights in an
/// array of its own.
struct AlongX {
    /// A cell's first control point, and the voxels in that cell.
    runs: Vec<(usize, std::ops::Range<usize>)>,
    /// The weights of each voxel's four control points, one array per control point.
    weights: [Vec<f64>; 4],
}

impl AlongX {
    fn new(table: &[(usize, [f64; 4])]) -> AlongX {
        let mut runs: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (x, &(cell, _)) in table.iter().enumerate() {
            match runs.last_mut() {
                Some((last, voxels)) if *last == cell => voxels.end = x + 1,
                _ => runs.push((cell, x..x + 1)),
            }
        }
        let weights = std::array::from_fn(|k| table.iter().map(|(_, w)| w[k]).collect());
        AlongX { runs, weights }
    }
}

/// `sum[x] += (Σₖ wₖ(x) · row[cell(x) + k]) as f32` along a row, each voxel's terms added in
/// order. Compiled twice, and the AVX2 build chosen where the CPU has it: within a run the
/// four control points are fixed, so each voxel is four products of loaded weights.
#[multiversion(targets("x86_64+avx2"))]
fn add_along_x(sum: &mut [f32], row: &[f64], along: &AlongX) {
    let [w0, w1, w2, w3] = &along.weights;
    for (cell, voxels) in &along.runs {
        let r: &[f64; 4] = row[*cell..*cell + 4]
            .try_into()
            .expect("four control points");
        let voxels = voxels.clone();
        let terms = w0[voxels.clone()]
            .iter()
            .zip(&w1[voxels.clone()])
            .zip(&w2[voxels.clone()])
            .zip(&w3[voxels.clone()]);
        for (s, (((a, b), c), d)) in sum[voxels].iter_mut().zip(terms) {
            let v = a * r[0] + b * r[1] + c * r[2] + d * r[3];
            *s += v as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basis_is_a_partition_of_unity() {
        for t in [0.0, 0.25, 0.5, 0.999] {
            let w = weights(t);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{w:?}");
            assert!(w.iter().all(|&v| v >= 0.0));
        }
    }

    #[test]
    fn a_constant_lattice_is_that_constant_everywhere() {
        let grid = Grid::new([9, 7, 5], [2.0, 3.0, 4.0]);
        let mut lattice = Lattice::zeros(Shape::new([2, 3, 1], [16.0, 18.0, 16.0]));
        lattice.coefficients.iter_mut().for_each(|c| *c = 0.7);
        let points: Vec<[f64; 3]> = (0..300)
            .map(|i| {
                let f = |m: usize, s: f64| ((i * m) % 97) as f64 / 96.0 * s;
                [f(7, 16.0), f(13, 18.0), f(29, 16.0)]
            })
            .collect();
        let basis = Basis::new(lattice.shape(), &points);
        for v in basis.evaluate(&lattice) {
            assert!((v - 0.7).abs() < 1e-12, "{v}");
        }
        for v in sum_on_grid(&[lattice], &grid, |_| ()) {
            assert!((v - 0.7).abs() < 1e-6, "{v}");
        }
    }

    #[test]
    fn values_on_a_regular_grid_agree_with_pointwise_evaluation() {
        let (shape, _) = scattered(0);
        let mut lattice = Lattice::zeros(shape);
        lattice
            .coefficients
            .iter_mut()
            .enumerate()
            .for_each(|(i, c)| *c = ((i * 7919) % 101) as f64 / 37.0 - 1.3);
        // Uneven lines, the ends of the extent among them.
        let axes = [
            vec![0.0, 3.5, 9.0, 14.2, 20.0],
            vec![0.0, 7.7, 12.0],
            vec![1.0, 8.0, 15.0, 22.5, 29.0, 30.0],
        ];
        let mut points = Vec::new();
        for &z in &axes[2] {
            for &y in &axes[1] {
                points.extend(axes[0].iter().map(|&x| [x, y, z]));
            }
        }
        let pointwise = Basis::new(shape, &points).evaluate(&lattice);
        let on_grid = lattice.values_on(&axes);
        assert_eq!(on_grid.len(), pointwise.len());
        for (g, p) in on_grid.iter().zip(&pointwise) {
            assert!((g - p).abs() < 1e-12, "{g} vs {p}");
        }
    }

    #[test]
    fn the_grid_evaluation_agrees_with_pointwise_evaluation() {
        // Two levels of different shapes, summed and mapped, against each point alone.
        let grid = Grid::new([11, 6, 8], [1.5, 2.0, 3.0]);
        let extent = [15.0, 10.0, 21.0];
        let lattices: Vec<Lattice> = [[3, 2, 2], [1, 4, 3]]
            .into_iter()
            .enumerate()
            .map(|(level, spans)| {
                let mut lattice = Lattice::zeros(Shape::new(spans, extent));
                lattice
                    .coefficients
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, c)| *c = ((i * 7919 + level) % 101) as f64 / 50.0 - 1.0);
                lattice
            })
            .collect();
        let out = sum_on_grid(&lattices, &grid, |row| {
            row.iter_mut().for_each(|v| *v = 2.0 * *v + 1.0)
        });
        let points: Vec<[f64; 3]> = (0..grid.len())
            .map(|i| {
                let [x, y, z] = [i % 11, (i / 11) % 6, i / 66];
                [x as f64 * 1.5, y as f64 * 2.0, z as f64 * 3.0]
            })
            .collect();
        let pointwise: Vec<Vec<f64>> = lattices
            .iter()
            .map(|l| Basis::new(l.shape(), &points).evaluate(l))
            .collect();
        for (i, v) in out.iter().enumerate() {
            let p = 2.0 * (pointwise[0][i] + pointwise[1][i]) + 1.0;
            assert!((*v as f64 - p).abs() < 1e-5, "{v} vs {p}");
        }
    }

    #[test]
    fn runs_along_x_add_what_each_voxel_alone_adds() {
        // Bit for bit: a voxel's four terms in the same order, whichever run it is in.
        let grid = Grid::new([37, 1, 1], [0.7, 1.0, 1.0]);
        let lattice = Lattice::zeros(Shape::new([5, 1, 1], [25.2, 1.0, 1.0]));
        let [table, _, _] = lattice.voxel_tables(&grid);
        let row: Vec<f64> = (0..8)
            .map(|i| ((i * 7919) % 23) as f64 / 7.0 - 1.5)
            .collect();
        let mut runs = vec![0.25f32; 37];
        add_along_x(&mut runs, &row, &AlongX::new(&table));
        let alone: Vec<f32> = table
            .iter()
            .map(|&(i, w)| {
                let v = w[0] * row[i] + w[1] * row[i + 1] + w[2] * row[i + 2] + w[3] * row[i + 3];
                0.25 + v as f32
            })
            .collect();
        assert_eq!(runs, alone);
        assert_eq!(AlongX::new(&table).runs.len(), 5, "one run per cell");
    }

    /// A lattice of 3×2×4 cells over 20×12×30 mm and `n` points scattered over it.
    fn scattered(n: usize) -> (Shape, Vec<[f64; 3]>) {
        let shape = Shape::new([3, 2, 4], [20.0, 12.0, 30.0]);
        let points = (0..n)
            .map(|i| {
                let f = |m: usize, s: f64| ((i * m) % 89) as f64 / 88.0 * s;
                [f(11, 20.0), f(17, 12.0), f(31, 30.0)]
            })
            .collect();
        (shape, points)
    }

    #[test]
    fn the_approximation_is_the_w_squared_weighted_average_of_the_proposals() {
        // Written out as Lee, Wolberg & Shin state it, point by point and control point by
        // control point, against the factored loop.
        let (shape, points) = scattered(500);
        let values: Vec<f64> = (0..points.len())
            .map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5)
            .collect();
        let basis = Basis::new(shape, &points);
        let mut num = vec![0f64; shape.control_points()];
        let mut den = vec![0f64; shape.control_points()];
        for (p, &z) in points.iter().zip(&values) {
            let located: Vec<(usize, [f64; 4])> = (0..3).map(|a| shape.locate(a, p[a])).collect();
            let mut support = Vec::new();
            for c in 0..4 {
                for b in 0..4 {
                    for a in 0..4 {
                        let w = located[0].1[a] * located[1].1[b] * located[2].1[c];
                        let idx = shape.index(located[0].0 + a, located[1].0 + b, located[2].0 + c);
                        support.push((idx, w));
                    }
                }
            }
            let sum_w2: f64 = support.iter().map(|(_, w)| w * w).sum();
            for (idx, w) in support {
                let proposal = w * z / sum_w2;
                num[idx] += w * w * proposal;
                den[idx] += w * w;
            }
        }
        let lattice = basis.approximate(&values);
        for ((got, n), d) in lattice.coefficients.iter().zip(&num).zip(&den) {
            let want = if *d > 0.0 { n / d } else { 0.0 };
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn repeated_residual_fits_converge_on_a_smooth_field() {
        // Dense samples of a smooth field: approximating the residual again and again (as
        // N4 does) drives the residual towards what the lattice cannot represent.
        let f = |p: &[f64; 3]| (p[0] / 30.0).sin() * (p[1] / 40.0).cos() + p[2] / 100.0;
        let points: Vec<[f64; 3]> = (0..20)
            .flat_map(|x| {
                (0..20).flat_map(move |y| {
                    (0..20).map(move |z| [x as f64 * 5.0, y as f64 * 5.0, z as f64 * 5.0])
                })
            })
            .collect();
        let truth: Vec<f64> = points.iter().map(f).collect();
        let basis = Basis::new(Shape::new([6, 6, 6], [95.0; 3]), &points);
        let mut field = Lattice::zeros(basis.shape());
        let mut at_points = vec![0.0; points.len()];
        let rms = |a: &[f64]| (a.iter().map(|v| v * v).sum::<f64>() / a.len() as f64).sqrt();
        let mut residual: Vec<f64> = truth.clone();
        let first = rms(&residual);
        for _ in 0..30 {
            let update = basis.approximate(&residual);
            field.add(&update);
            for (a, u) in at_points.iter_mut().zip(basis.evaluate(&update)) {
                *a += u;
            }
            residual = truth.iter().zip(&at_points).map(|(t, a)| t - a).collect();
        }
        assert!(
            rms(&residual) < 0.03 * first,
            "{} of {first}",
            rms(&residual)
        );
        // Between the samples too.
        let between = [[47.0, 31.0, 52.0], [2.5, 92.5, 61.0]];
        let at = Basis::new(field.shape(), &between).evaluate(&field);
        for (p, v) in between.iter().zip(at) {
            assert!((v - f(p)).abs() < 0.03, "{v} vs {}", f(p));
        }
    }
}
