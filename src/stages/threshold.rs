//! Intensity statistics: Otsu's threshold and exact percentiles, read straight from a volume
//! (a mask or a filter chooses the voxels) without copying it.

use rayon::prelude::*;

/// Values per parallel task of the counting passes.
const CHUNK: usize = 1 << 18;

/// Otsu's threshold over the finite `values`, using a 256-bin histogram between the 0.5th
/// and 99.5th percentiles (so a few hot voxels cannot squeeze the histogram). `None` for
/// fewer than two values or no spread between those percentiles.
pub fn otsu(values: &[f32]) -> Option<f32> {
    let [lo, hi] = percentiles(values, |_| true, [0.5, 99.5])?;
    if hi <= lo {
        return None;
    }
    const BINS: usize = 256;
    let width = (hi - lo) / BINS as f32;
    let hist = values
        .par_chunks(CHUNK)
        .fold(
            || vec![0u64; BINS],
            |mut hist, chunk| {
                for &v in chunk.iter().filter(|v| v.is_finite()) {
                    let b = (((v - lo) / width) as isize).clamp(0, BINS as isize - 1) as usize;
                    hist[b] += 1;
                }
                hist
            },
        )
        .reduce(|| vec![0u64; BINS], summed);
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

/// Two histograms of the same bins, counted over different parts of a volume, added.
pub(crate) fn summed<T: std::ops::AddAssign>(mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    a
}

/// A key whose unsigned order is [`f32::total_cmp`]'s order.
#[inline]
fn key(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

/// Keys share a bucket when their top 16 bits agree: sign, exponent and 7 bits of mantissa,
/// so a bucket spans under 1 % of a value's magnitude.
const BUCKET_SHIFT: u32 = 16;

/// The finite values of `chunk`, which starts at index `start`, for which `keep(index)`.
fn kept<'a>(
    chunk: &'a [f32],
    start: usize,
    keep: &'a impl Fn(usize) -> bool,
) -> impl Iterator<Item = f32> + 'a {
    chunk
        .iter()
        .enumerate()
        .filter(move |&(i, v)| v.is_finite() && keep(start + i))
        .map(|(_, &v)| v)
}

/// The `qs`-th percentiles (0–100), by nearest rank, of the finite `values[i]` for which
/// `keep(i)`; `None` when there are none. Exact, and without a copy of the values: one pass
/// counts them per bucket of [`key`], a second gathers only the buckets holding the ranks
/// asked for, and a selection inside each finds the value.
pub fn percentiles<const N: usize>(
    values: &[f32],
    keep: impl Fn(usize) -> bool + Sync,
    qs: [f64; N],
) -> Option<[f32; N]> {
    const BUCKETS: usize = 1 << (32 - BUCKET_SHIFT);
    let counts = values
        .par_chunks(CHUNK)
        .enumerate()
        .fold(
            || vec![0u64; BUCKETS],
            |mut counts, (c, chunk)| {
                for v in kept(chunk, c * CHUNK, &keep) {
                    counts[(key(v) >> BUCKET_SHIFT) as usize] += 1;
                }
                counts
            },
        )
        .reduce_with(summed)?;
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return None;
    }
    // Per rank: its bucket and its position among the bucket's values.
    let wanted = qs.map(|q| {
        let rank = (((q / 100.0) * (n - 1) as f64).round() as u64).min(n - 1);
        let mut before = 0;
        let bucket = counts
            .iter()
            .position(|&c| {
                before += c;
                before > rank
            })
            .expect("rank < n");
        (bucket, (rank - (before - counts[bucket])) as usize)
    });
    let mut buckets: Vec<usize> = wanted.iter().map(|&(b, _)| b).collect();
    buckets.sort_unstable();
    buckets.dedup();
    let mut gathered = values
        .par_chunks(CHUNK)
        .enumerate()
        .fold(
            || vec![Vec::new(); buckets.len()],
            |mut gathered: Vec<Vec<f32>>, (c, chunk)| {
                for v in kept(chunk, c * CHUNK, &keep) {
                    if let Ok(i) = buckets.binary_search(&((key(v) >> BUCKET_SHIFT) as usize)) {
                        gathered[i].push(v);
                    }
                }
                gathered
            },
        )
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(b).for_each(|(a, b)| a.extend(b));
            a
        })?;
    Some(wanted.map(|(bucket, position)| {
        let i = buckets.binary_search(&bucket).expect("gathered");
        *gathered[i]
            .select_nth_unstable_by(position, f32::total_cmp)
            .1
    }))
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
        let v: Vec<f32> = (0..=100).map(|i| i as f32).collect();
        let all = |_| true;
        assert_eq!(
            percentiles(&v, all, [1.0, 1.0, 50.0, 99.5, 20.0]),
            Some([1.0, 1.0, 50.0, 100.0, 20.0])
        );
        assert_eq!(percentiles(&v, all, [50.0]), Some([50.0]));
        assert_eq!(percentiles(&v, all, [99.0]), Some([99.0]));
        assert_eq!(
            percentiles(&v, |i| i % 2 == 1, [0.0, 100.0]),
            Some([1.0, 99.0])
        );
        assert_eq!(percentiles(&[], all, [50.0]), None);
        assert_eq!(percentiles(&[f32::NAN, f32::INFINITY], all, [50.0]), None);
        assert_eq!(otsu(&[1.0, 1.0, 1.0]), None);
    }

    /// Against sorting, on values that crowd a few buckets, span signs and zeros, and leave
    /// out non-finite ones, across several parallel chunks.
    #[test]
    fn percentiles_match_a_sort() {
        let n = 3 * CHUNK + 17;
        let v: Vec<f32> = (0..n)
            .map(|i| match i % 11 {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                3 => -((i % 1000) as f32) * 1e-3,
                4 => f32::INFINITY,
                _ => 1.0 + ((i * 7919) % 100_003) as f32 * 1e-7,
            })
            .collect();
        let keep = |i: usize| !i.is_multiple_of(3);
        let mut sorted: Vec<f32> = (0..n)
            .filter(|&i| keep(i) && v[i].is_finite())
            .map(|i| v[i])
            .collect();
        sorted.sort_by(f32::total_cmp);
        let qs = [0.0, 0.5, 10.0, 25.0, 50.0, 75.0, 99.5, 100.0];
        let got = percentiles(&v, keep, qs).unwrap();
        for (q, g) in qs.iter().zip(got) {
            let rank = ((q / 100.0) * (sorted.len() - 1) as f64).round() as usize;
            assert_eq!(g.to_bits(), sorted[rank].to_bits(), "q {q}");
        }
    }
}
