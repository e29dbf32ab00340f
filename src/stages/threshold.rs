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
    let lo = percentile(&mut sample, 0.5)?;
    let hi = percentile(&mut sample, 99.5)?;
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

/// The `q`-th percentile (0–100) of `values`, by nearest rank; reorders `values`.
pub fn percentile(values: &mut [f32], q: f64) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q / 100.0) * (values.len() - 1) as f64).round() as usize;
    let rank = rank.min(values.len() - 1);
    let (_, v, _) = values.select_nth_unstable_by(rank, f32::total_cmp);
    Some(*v)
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
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut [], 50.0), None);
        assert_eq!(otsu(&[1.0, 1.0, 1.0]), None);
    }
}
