//! Least-squares fit of a smooth 3-D polynomial (all terms xⁱyʲzˡ with i + j + l ≤ degree)
//! to scattered samples, in millimetre coordinates centred and scaled for conditioning.

/// A fitted polynomial.
#[derive(Debug, Clone)]
pub struct Polynomial {
    exponents: Vec<[u32; 3]>,
    coefficients: Vec<f64>,
    centre: [f64; 3],
    scale: f64,
}

/// All exponent triples of total degree ≤ `degree`.
fn exponents(degree: u32) -> Vec<[u32; 3]> {
    let mut e = Vec::new();
    for i in 0..=degree {
        for j in 0..=degree - i {
            for l in 0..=degree - i - j {
                e.push([i, j, l]);
            }
        }
    }
    e
}

impl Polynomial {
    /// Number of coefficients of a polynomial of `degree`.
    pub fn terms(degree: u32) -> usize {
        exponents(degree).len()
    }

    /// Fit `values` at `points` (mm). `None` if the system is singular (too few points).
    pub fn fit(points: &[[f64; 3]], values: &[f64], degree: u32) -> Option<Self> {
        let exponents = exponents(degree);
        let n = exponents.len();
        if points.len() < n {
            return None;
        }
        let mut centre = [0f64; 3];
        for p in points {
            (0..3).for_each(|a| centre[a] += p[a]);
        }
        centre.iter_mut().for_each(|c| *c /= points.len() as f64);
        let scale = 100.0;
        let mut ata = vec![0f64; n * n];
        let mut atb = vec![0f64; n];
        let mut row = vec![0f64; n];
        for (p, &v) in points.iter().zip(values) {
            basis(&exponents, p, centre, scale, &mut row);
            for r in 0..n {
                atb[r] += row[r] * v;
                for c in r..n {
                    ata[r * n + c] += row[r] * row[c];
                }
            }
        }
        for r in 0..n {
            for c in 0..r {
                ata[r * n + c] = ata[c * n + r];
            }
        }
        let coefficients = solve(ata, atb, n)?;
        Some(Self {
            exponents,
            coefficients,
            centre,
            scale,
        })
    }

    /// Value at `point` (mm).
    pub fn eval(&self, point: &[f64; 3]) -> f64 {
        let mut row = vec![0f64; self.coefficients.len()];
        basis(&self.exponents, point, self.centre, self.scale, &mut row);
        row.iter().zip(&self.coefficients).map(|(b, c)| b * c).sum()
    }

    /// Per-axis tables for evaluating on a grid: `powers[a][k][e]` is the normalised
    /// coordinate of index `k` along axis `a`, to the power `e`.
    pub fn grid_powers(&self, dims: [usize; 3], spacing: [f64; 3]) -> [Vec<Vec<f64>>; 3] {
        let degree = self
            .exponents
            .iter()
            .map(|e| e[0] + e[1] + e[2])
            .max()
            .unwrap_or(0) as usize;
        std::array::from_fn(|a| {
            (0..dims[a])
                .map(|k| {
                    let x = (k as f64 * spacing[a] - self.centre[a]) / self.scale;
                    (0..=degree).map(|e| x.powi(e as i32)).collect()
                })
                .collect()
        })
    }

    /// Value at grid index `(x, y, z)` from [`Polynomial::grid_powers`] tables.
    pub fn eval_on_grid(&self, powers: &[Vec<Vec<f64>>; 3], x: usize, y: usize, z: usize) -> f64 {
        self.exponents
            .iter()
            .zip(&self.coefficients)
            .map(|(e, c)| {
                c * powers[0][x][e[0] as usize]
                    * powers[1][y][e[1] as usize]
                    * powers[2][z][e[2] as usize]
            })
            .sum()
    }
}

fn basis(exponents: &[[u32; 3]], p: &[f64; 3], centre: [f64; 3], scale: f64, out: &mut [f64]) {
    let q: [f64; 3] = std::array::from_fn(|a| (p[a] - centre[a]) / scale);
    for (o, e) in out.iter_mut().zip(exponents) {
        *o = q[0].powi(e[0] as i32) * q[1].powi(e[1] as i32) * q[2].powi(e[2] as i32);
    }
}

/// Solve the n×n system `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for col in 0..n {
        let pivot =
            (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[pivot * n + col].abs() < 1e-12 {
            return None;
        }
        if pivot != col {
            for k in 0..n {
                a.swap(pivot * n + k, col * n + k);
            }
            b.swap(pivot, col);
        }
        for r in col + 1..n {
            let factor = a[r * n + col] / a[col * n + col];
            for k in col..n {
                a[r * n + k] -= factor * a[col * n + k];
            }
            b[r] -= factor * b[col];
        }
    }
    let mut x = vec![0f64; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r * n + k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r * n + r];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_cubic_exactly() {
        let f = |p: &[f64; 3]| 0.3 + 0.01 * p[0] - 0.002 * p[1] * p[2] / 10.0 + 1e-6 * p[0].powi(3);
        let points: Vec<[f64; 3]> = (0..400)
            .map(|i| {
                [
                    (i % 7) as f64 * 13.0,
                    (i % 11) as f64 * 9.0,
                    (i % 13) as f64 * 7.0,
                ]
            })
            .collect();
        let values: Vec<f64> = points.iter().map(f).collect();
        let poly = Polynomial::fit(&points, &values, 3).unwrap();
        for p in points.iter().step_by(37) {
            assert!((poly.eval(p) - f(p)).abs() < 1e-9);
        }
        let powers = poly.grid_powers([4, 4, 4], [13.0, 9.0, 7.0]);
        assert!((poly.eval_on_grid(&powers, 3, 2, 1) - f(&[39.0, 18.0, 7.0])).abs() < 1e-9);
        assert_eq!(Polynomial::terms(3), 20);
        assert!(Polynomial::fit(&points[..5], &values[..5], 3).is_none());
    }
}
