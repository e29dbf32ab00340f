//! Intensity statistics: Otsu's threshold and exact percentiles.

/// Otsu's threshold over `values`, using a 256-bin histogram between the 0.5th and 99.5th
/// percentiles (so a few hot voxels cannot squeeze the histogram). `None` for fewer than two
/// distinct values.
pub fn otsu(values: &[f32]) -> Option<f32> {
    let mut sample = Vec::with_capacity(values.len());
    sample.extend(values.iter().copied().filter(|v| v.is_finite()));
    if sample.len() < 2 {
        return None;
    }
    let [lo, hi] = percentiles(&mut sample, [0.5, 99.5])?;
    if hi <= lo {
        return None;
    }
    const BINS: usize = 256;
    let width = (hi - lo) / BINS as f32;
    let mut hist = [0u64; BINS];
    for &v in &sample {
        let b = (((v - lo) / width) as isize).clamp(0, BINS as isize - 1) as usize;
        hist[b] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0) = (0u64, 0f64);
    let (mut best, mut best_between) = (0usize, -1f64);
    for (i, &c) in hist.iter().enumerate() {
        w0 += c;
        sum0 += i as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0 || w1 == 0 {
            continue;
        }
        let m0 = sum0 / w0 as f64;
        let m1 = (sum_all - sum0) / w1 as f64;
        let between = w0 as f64 * w1 as f64 * (m0 - m1).powi(2);
        if between > best_between {
            best_between = between;
            best = i;
        }
    }
    Some(lo + (best as f32 + 1.0) * width)
}

/// The `qs`-th percentiles (0–100) of `values`, by nearest rank; reorders `values`. `None`
/// for no values. In ascending order of `qs`, each selection runs only on the part above the
/// previous one.
pub fn percentiles<const N: usize>(values: &mut [f32], qs: [f64; N]) -> Option<[f32; N]> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mut out = [0f32; N];
    // values[..below] hold the `below` smallest values, in some order.
    let mut below = 0;
    for (o, q) in out.iter_mut().zip(qs) {
        let rank = (((q / 100.0) * (n - 1) as f64).round() as usize).min(n - 1);
        *o = if rank >= below {
            let (_, v, _) = values[below..].select_nth_unstable_by(rank - below, f32::total_cmp);
            below = rank + 1;
            *v
        } else {
            *values[..below]
                .select_nth_unstable_by(rank, f32::total_cmp)
                .1
        };
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_clusters() {
        let mut v: Vec<f32> = (0..1000).map(|i| 10.0 + (i % 7) as f32).collect();
        v.extend((0..1000).map(|i| 100.0 + (i % 5) as f32));
        let t = otsu(&v).unwrap();
        assert!(t > 16.0 && t < 100.0, "threshold {t}");
    }

    #[test]
    fn percentile_by_rank() {
        let mut v: Vec<f32> = (0..=100).map(|i| i as f32).collect();
        assert_eq!(
            percentiles(&mut v, [1.0, 1.0, 50.0, 99.5, 20.0]),
            Some([1.0, 1.0, 50.0, 100.0, 20.0])
        );
        assert_eq!(percentiles(&mut v, [50.0]), Some([50.0]));
        assert_eq!(percentiles(&mut v, [99.0]), Some([99.0]));
        assert_eq!(percentiles(&mut [], [50.0]), None);
        assert_eq!(otsu(&[1.0, 1.0, 1.0]), None);
    }
}
