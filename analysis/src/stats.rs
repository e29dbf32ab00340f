//! The statistics behind ranking and regression checks, checked against SciPy's results.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// The `p` quantile (0..=1) of sorted data, linear interpolation between closest ranks
/// (NumPy's default, Hyndman & Fan type 7). `NaN` for no data.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// The median of unsorted data.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Ranks (1-based, ties get their average rank) and the tie term Σ(t³ − t) over tie groups.
pub fn ranks(values: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    (ranks, ties)
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// A correlation with its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    /// Spearman's ρ.
    pub rho: f64,
    /// Two-sided p-value (t approximation with n − 2 degrees of freedom, as SciPy).
    pub p: f64,
}

/// Spearman's rank correlation; `None` with fewer than 3 pairs or a constant side.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<Correlation> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let rho = pearson(&ranks(x).0, &ranks(y).0)?;
    Some(Correlation {
        rho,
        p: correlation_p(rho, (n - 2) as f64)?,
    })
}

/// Two-sided p-value of a correlation `rho` with `df` degrees of freedom (t approximation).
fn correlation_p(rho: f64, df: f64) -> Option<f64> {
    if rho.abs() >= 1.0 {
        return Some(0.0);
    }
    let t = rho * (df / ((1.0 - rho) * (1.0 + rho))).sqrt();
    Some(2.0 * StudentsT::new(0.0, 1.0, df).ok()?.sf(t.abs()))
}

/// Spearman's ρ within groups: each group's pairs are ranked on their own and centred, and the
/// pooled ranks correlated, so what separates the groups does not count (a number that only
/// tells the groups apart has ρ ≈ 0 here). `groups` are `(x, y)` samples; groups of fewer than
/// 3 pairs are left out. The p-value uses n − g − 1 degrees of freedom, one spent per group.
pub fn spearman_within(groups: &[(Vec<f64>, Vec<f64>)]) -> Option<Correlation> {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut used = 0usize;
    for (x, y) in groups.iter().filter(|(x, _)| x.len() >= 3) {
        let (rx, ry) = (ranks(x).0, ranks(y).0);
        let mean = (x.len() + 1) as f64 / 2.0;
        xs.extend(rx.iter().map(|r| r - mean));
        ys.extend(ry.iter().map(|r| r - mean));
        used += 1;
    }
    let df = xs.len().checked_sub(used + 1).filter(|&d| d > 0)? as f64;
    let rho = pearson(&xs, &ys)?;
    Some(Correlation {
        rho,
        p: correlation_p(rho, df)?,
    })
}

/// Least-squares slope of `y` on `x`; `None` when `x` is constant.
pub fn ols_slope(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// A two-sample Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample (SciPy's `statistic`).
    pub u: f64,
    /// Two-sided p-value: exact when a sample has at most 8 values and there are no ties,
    /// otherwise the normal approximation with tie and continuity corrections (SciPy's `auto`).
    pub p: f64,
    /// Rank-biserial correlation, in −1..=1: positive when the first sample tends to be larger.
    pub rank_biserial: f64,
}

/// Two-sided Mann-Whitney U test of `a` against `b`; `None` when a sample is empty.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..n1].iter().sum();
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u1 = r1 - f1 * (f1 + 1.0) / 2.0;
    let u2 = f1 * f2 - u1;
    let u = u1.max(u2);
    let p = if (n1 <= 8 || n2 <= 8) && ties == 0.0 {
        (2.0 * exact_u_sf(n1, n2, u.round() as usize)).min(1.0)
    } else {
        let n = f1 + f2;
        let mu = f1 * f2 / 2.0;
        let sigma = (f1 * f2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).sqrt();
        if sigma == 0.0 {
            1.0
        } else {
            let z = (u - mu - 0.5) / sigma;
            (2.0 * Normal::standard().sf(z)).min(1.0)
        }
    };
    Some(MannWhitney {
        u: u1,
        p,
        rank_biserial: 2.0 * u1 / (f1 * f2) - 1.0,
    })
}

/// P(U ≥ u) under the null, from the exact distribution of U: its counts are the coefficients
/// of the Gaussian binomial ∏ᵢ (1 − q^(n2+i)) / (1 − q^i), i = 1..=n1.
fn exact_u_sf(n1: usize, n2: usize, u: usize) -> f64 {
    let max = n1 * n2;
    let mut poly = vec![0.0f64; max + 1];
    poly[0] = 1.0;
    for i in 1..=n1 {
        // Multiply by (1 - q^(n2+i)).
        let shift = n2 + i;
        for k in (shift..=max).rev() {
            poly[k] -= poly[k - shift];
        }
        // Divide by (1 - q^i): running sum with stride i.
        for k in i..=max {
            poly[k] += poly[k - i];
        }
    }
    let total: f64 = poly.iter().sum();
    poly[u.min(max + 1)..].iter().sum::<f64>() / total
}

/// A Kruskal-Wallis H test across groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KruskalWallis {
    /// H, tie-corrected.
    pub h: f64,
    /// p-value from χ² with k − 1 degrees of freedom.
    pub p: f64,
    /// ε² = H / (n − 1): the share of rank variance the grouping explains (0..=1).
    pub epsilon_squared: f64,
}

/// Kruskal-Wallis test; `None` with fewer than two non-empty groups or no variation.
pub fn kruskal_wallis(groups: &[Vec<f64>]) -> Option<KruskalWallis> {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.len() < 2 {
        return None;
    }
    let all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let n = all.len() as f64;
    let (r, ties) = ranks(&all);
    let mut offset = 0;
    let mut sum = 0.0;
    for g in &groups {
        let rs: f64 = r[offset..offset + g.len()].iter().sum();
        sum += rs * rs / g.len() as f64;
        offset += g.len();
    }
    let correction = 1.0 - ties / (n * n * n - n);
    if correction <= 0.0 {
        return None;
    }
    let h = (12.0 / (n * (n + 1.0)) * sum - 3.0 * (n + 1.0)) / correction;
    let df = (groups.len() - 1) as f64;
    let p = ChiSquared::new(df).ok()?.sf(h.max(0.0));
    Some(KruskalWallis {
        h,
        p,
        epsilon_squared: (h / (n - 1.0)).clamp(0.0, 1.0),
    })
}

/// Benjamini-Hochberg adjusted p-values (q-values), in the input's order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut q = vec![0.0; m];
    let mut running = 1.0f64;
    for (i, &k) in order.iter().enumerate() {
        let rank = (m - i) as f64;
        running = running.min(p[k] * m as f64 / rank);
        q[k] = running.min(1.0);
    }
    q
}

/// Hodges-Lehmann estimate of the shift from `a` to `b`: the median of all `b_j − a_i`.
pub fn hodges_lehmann(a: &[f64], b: &[f64]) -> f64 {
    let diffs: Vec<f64> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| y - x))
        .collect();
    median(&diffs)
}

/// The Hodges-Lehmann shift from `a` to `b` with its distribution-free confidence interval
/// (Moses' interval, level 1 − alpha: the order statistics of the pairwise differences that the
/// Mann-Whitney distribution puts at alpha/2 in each tail, normal approximation):
/// `(estimate, low, high)`; `None` when a sample is empty.
pub fn hodges_lehmann_ci(a: &[f64], b: &[f64], alpha: f64) -> Option<(f64, f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut diffs: Vec<f64> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| y - x))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let z = Normal::standard().inverse_cdf(1.0 - alpha / 2.0);
    let k = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()).floor();
    let k = (k.max(1.0) as usize).min(diffs.len());
    Some((quantile(&diffs, 0.5), diffs[k - 1], diffs[diffs.len() - k]))
}

/// A Wilcoxon signed-rank test of paired differences against a zero median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedRank {
    /// Sum of the ranks of the positive differences (SciPy's `statistic` is the smaller of
    /// the two sums).
    pub w_plus: f64,
    /// Two-sided p-value: exact when there are at most 50 non-zero differences and no ties
    /// among their sizes, otherwise the normal approximation with the tie correction (SciPy's
    /// `auto`, without continuity correction).
    pub p: f64,
}

/// Two-sided Wilcoxon signed-rank test of `d`; zeros are dropped (Wilcoxon's method).
/// `None` when no difference is left.
pub fn wilcoxon(d: &[f64]) -> Option<SignedRank> {
    let nonzero: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nonzero.len();
    if n == 0 {
        return None;
    }
    let sizes: Vec<f64> = nonzero.iter().map(|x| x.abs()).collect();
    let (r, ties) = ranks(&sizes);
    let w_plus: f64 = r
        .iter()
        .zip(&nonzero)
        .filter(|(_, x)| **x > 0.0)
        .map(|(r, _)| r)
        .sum();
    let f = n as f64;
    let total = f * (f + 1.0) / 2.0;
    let w = w_plus.min(total - w_plus);
    let p = if n <= 50 && ties == 0.0 {
        let counts = signed_rank_counts(n);
        let all: f64 = counts.iter().sum();
        let below: f64 = counts[..=(w.round() as usize)].iter().sum();
        (2.0 * below / all).min(1.0)
    } else {
        // `ranks` reports Σ(t³ − t) over tie groups.
        let var = f * (f + 1.0) * (2.0 * f + 1.0) / 24.0 - ties / 48.0;
        if var <= 0.0 {
            1.0
        } else {
            let z = (w - total / 2.0) / var.sqrt();
            (2.0 * Normal::standard().cdf(z)).min(1.0)
        }
    };
    Some(SignedRank { w_plus, p })
}

/// How many of the 2ⁿ sign patterns give each signed-rank sum 0..=n(n+1)/2.
fn signed_rank_counts(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0.0f64; max + 1];
    counts[0] = 1.0;
    for rank in 1..=n {
        for k in (rank..=max).rev() {
            counts[k] += counts[k - rank];
        }
    }
    counts
}

/// The Hodges-Lehmann estimate of a paired shift, the median of the Walsh averages
/// (dᵢ + dⱼ)/2, i ≤ j, with its distribution-free interval (level 1 − alpha: the Walsh
/// averages that the signed-rank distribution puts at alpha/2 in each tail, exact up to 50
/// pairs, normal approximation above): `(estimate, low, high)`; `None` when `d` is empty.
pub fn walsh_ci(d: &[f64], alpha: f64) -> Option<(f64, f64, f64)> {
    let n = d.len();
    if n == 0 {
        return None;
    }
    let mut walsh: Vec<f64> = (0..n)
        .flat_map(|i| (i..n).map(move |j| (d[i] + d[j]) / 2.0))
        .collect();
    walsh.sort_by(f64::total_cmp);
    let m = walsh.len();
    let k = if n <= 50 {
        // The largest k with P(W ≤ k − 1) ≤ alpha/2.
        let counts = signed_rank_counts(n);
        let all: f64 = counts.iter().sum();
        let mut below = 0.0;
        let mut k = 0;
        while k < counts.len() && below + counts[k] <= alpha / 2.0 * all {
            below += counts[k];
            k += 1;
        }
        k
    } else {
        let f = n as f64;
        let z = Normal::standard().inverse_cdf(1.0 - alpha / 2.0);
        (m as f64 / 2.0 - z * (f * (f + 1.0) * (2.0 * f + 1.0) / 24.0).sqrt()).floor() as usize
    };
    let k = k.clamp(1, m);
    Some((quantile(&walsh, 0.5), walsh[k - 1], walsh[m - k]))
}

#[cfg(test)]
mod tests {
    //! Reference values from SciPy 1.17.1 (`mannwhitneyu`, `spearmanr`, `kruskal`,
    //! `false_discovery_control`) and NumPy's `percentile`.
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    #[test]
    fn quantiles_match_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        close(quantile(&v, 0.5), 3.0, 1e-12);
        close(quantile(&v, 0.9), 7.6, 1e-12);
        close(quantile(&v, 0.95), 8.8, 1e-12);
        close(quantile(&v, 0.99), 9.76, 1e-12);
    }

    #[test]
    #[allow(clippy::approx_constant)] // 3.14 is a sample value, not π
    fn mann_whitney_matches_scipy() {
        // Ties: normal approximation.
        let a = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let b = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
        let r = mann_whitney(&a, &b).unwrap();
        close(r.u, 58.0, 1e-12);
        close(r.p, 0.13291945818531892, 1e-9);
        // Small, no ties: exact.
        let r = mann_whitney(&[19.0, 22.0, 16.0, 29.0, 24.0], &[20.0, 11.0, 17.0, 12.0]).unwrap();
        close(r.u, 17.0, 1e-12);
        close(r.p, 0.1111111111111111, 1e-12);
        // Larger samples with ties.
        let a: Vec<f64> = [3, 4, 2, 6, 2, 5, 7, 8, 3, 4, 5, 9, 10, 3, 2]
            .map(f64::from)
            .into();
        let b: Vec<f64> = [9, 7, 5, 10, 6, 8, 11, 12, 6, 7, 8, 13, 14, 9, 8]
            .map(f64::from)
            .into();
        let r = mann_whitney(&a, &b).unwrap();
        close(r.u, 33.0, 1e-12);
        close(r.p, 0.0010019865190386446, 1e-9);
        assert!(r.rank_biserial < -0.6);
    }

    #[test]
    fn spearman_matches_scipy() {
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        let y = [2.0, 1.0, 4.0, 3.0, 7.0, 5.0, 6.0, 9.0, 10.0, 8.0];
        let c = spearman(&x, &y).unwrap();
        close(c.rho, 0.9030303030303028, 1e-12);
        close(c.p, 0.0003436121977632824, 1e-9);
        assert!(spearman(&x, &[1.0; 10]).is_none());
    }

    #[test]
    fn within_groups_only_what_varies_inside_them_counts() {
        // Two groups far apart, with no order inside either: ρ is high across, ~0 within.
        let a = (vec![1.0, 2.0, 3.0, 4.0], vec![13.0, 11.0, 14.0, 12.0]);
        let b = (vec![11.0, 12.0, 13.0, 14.0], vec![21.0, 24.0, 22.0, 23.0]);
        let across: Vec<f64> = a.0.iter().chain(&b.0).copied().collect();
        let ys: Vec<f64> = a.1.iter().chain(&b.1).copied().collect();
        assert!(spearman(&across, &ys).unwrap().rho > 0.7);
        let w = spearman_within(&[a.clone(), b.clone()]).unwrap();
        assert!(w.rho.abs() < 0.3 && w.p > 0.4, "{w:?}");
        // Order inside each group is found.
        let c = (vec![1.0, 2.0, 3.0, 4.0], vec![10.0, 11.0, 12.0, 13.0]);
        let d = (vec![11.0, 12.0, 13.0, 14.0], vec![20.0, 21.0, 22.0, 23.0]);
        close(spearman_within(&[c, d]).unwrap().rho, 1.0, 1e-12);
    }

    #[test]
    fn kruskal_matches_scipy() {
        let g = vec![
            vec![2.9, 3.0, 2.5, 2.6, 3.2],
            vec![3.8, 2.7, 4.0, 2.4],
            vec![2.8, 3.4, 3.7, 2.2, 2.0],
        ];
        let k = kruskal_wallis(&g).unwrap();
        close(k.h, 0.7714285714285722, 1e-9);
        close(k.p, 0.6799647735788936, 1e-9);
    }

    #[test]
    fn bh_matches_scipy() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005, 0.5]);
        for (a, b) in q.iter().zip([0.025, 0.05, 0.05, 0.025, 0.5]) {
            close(*a, b, 1e-12);
        }
    }

    #[test]
    fn moses_interval_brackets_the_shift() {
        let a: Vec<f64> = (0..20).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 5.0).collect();
        let (est, lo, hi) = hodges_lehmann_ci(&a, &b, 0.05).unwrap();
        close(est, 5.0, 1e-12);
        assert!(
            lo < 5.0 && hi > 5.0 && lo > -3.0 && hi < 13.0,
            "[{lo}, {hi}]"
        );
        // n1 = n2 = 20: k = floor(200 - 1.96 * sqrt(400 * 41 / 12)) = 127, so the interval is
        // the 127th smallest and largest of the 400 differences.
        let mut d: Vec<f64> = a
            .iter()
            .flat_map(|x| b.iter().map(move |y| y - x))
            .collect();
        d.sort_by(f64::total_cmp);
        assert_eq!((lo, hi), (d[126], d[400 - 127]));
    }

    #[test]
    fn slope_and_shift() {
        close(
            ols_slope(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap(),
            2.0,
            1e-12,
        );
        close(
            hodges_lehmann(&[1.0, 2.0, 3.0], &[11.0, 12.0, 13.0]),
            10.0,
            1e-12,
        );
    }

    #[test]
    fn wilcoxon_matches_scipy() {
        // No ties: exact (SciPy `wilcoxon(d)`: statistic 6, p 0.02734375).
        let d = [0.12, -0.05, 0.33, 0.08, 0.21, -0.11, 0.15, 0.27, 0.02, 0.19];
        let r = wilcoxon(&d).unwrap();
        close(r.w_plus.min(55.0 - r.w_plus), 6.0, 1e-12);
        close(r.p, 0.02734375, 1e-12);
        // Ties: normal approximation (SciPy `method="approx", correction=False`).
        let d = [
            0.1, 0.1, -0.2, 0.3, 0.3, 0.3, 0.05, -0.05, 0.4, 0.2, 0.15, 0.12,
        ];
        let r = wilcoxon(&d).unwrap();
        close(r.w_plus.min(78.0 - r.w_plus), 9.0, 1e-12);
        close(r.p, 0.018286988910466224, 1e-9);
        assert!(wilcoxon(&[0.0, 0.0]).is_none());
    }

    #[test]
    fn walsh_interval_uses_the_signed_rank_critical_value() {
        // n = 10, alpha 0.05: the two-sided critical value of W is 8, so the interval runs
        // from the 9th smallest to the 9th largest of the 55 Walsh averages.
        let d = [0.12, -0.05, 0.33, 0.08, 0.21, -0.11, 0.15, 0.27, 0.02, 0.19];
        let (est, lo, hi) = walsh_ci(&d, 0.05).unwrap();
        close(est, 0.12, 1e-12);
        close(lo, 0.02, 1e-12);
        close(hi, 0.225, 1e-12);
    }
}
