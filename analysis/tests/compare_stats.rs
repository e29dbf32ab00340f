//! Operating characteristics of `compare`, with fixed seeds: false alarms under A/A, power at a
//! 20 % slowdown, and a 2 % slowdown under the default 5 % minimum effect.
//!
//! Durations are log-normal (skewed, like run times) with σ = 0.1 on the log scale (CV ≈ 10 %),
//! n = 20 replicates per side, 200 comparisons per scenario.

use neuro_batch_analysis::compare::{CompareOptions, Verdict, compare};
use neuro_batch_analysis::{AttrValue, Span, SpanTable, Status};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal};

fn table(durations_ms: &[f64]) -> SpanTable {
    sized_table(durations_ms, None)
}

/// Spans of `skull_strip`, with `file.size_mb` when sizes are given.
fn sized_table(durations_ms: &[f64], sizes_mb: Option<&[f64]>) -> SpanTable {
    let spans = durations_ms
        .iter()
        .enumerate()
        .map(|(i, d)| Span {
            trace_id: format!("{i:032x}"),
            span_id: format!("{i:016x}"),
            parent_id: None,
            name: "skull_strip".into(),
            service: "neuro-batch".into(),
            start_ns: 0,
            end_ns: (d * 1e6) as i64,
            status: Status::Ok,
            error_message: None,
            attributes: sizes_mb
                .map(|s| [("file.size_mb".to_owned(), AttrValue::Float(s[i]))].into())
                .unwrap_or_default(),
        })
        .collect();
    SpanTable::build(spans).unwrap()
}

/// How often each verdict comes out over `runs` comparisons of n = 20 against n = 20, the
/// candidate's durations scaled by `shift`.
fn verdicts(shift: f64, sigma: f64, seed: u64, runs: usize) -> [usize; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let dist = LogNormal::new(100f64.ln(), sigma).unwrap();
    let mut counts = [0; 3];
    for _ in 0..runs {
        let base: Vec<f64> = (0..20).map(|_| dist.sample(&mut rng)).collect();
        let cand: Vec<f64> = (0..20).map(|_| dist.sample(&mut rng) * shift).collect();
        let result = compare(&table(&base), &table(&cand), &CompareOptions::default()).unwrap();
        match result[0].verdict {
            Verdict::Regression => counts[0] += 1,
            Verdict::Improvement => counts[1] += 1,
            Verdict::NoChange => counts[2] += 1,
            Verdict::NotEnoughData => panic!("20 per side is enough"),
        }
    }
    counts
}

#[test]
fn a_a_comparisons_rarely_alarm() {
    let [regressions, improvements, _] = verdicts(1.0, 0.1, 1, 200);
    assert!(
        regressions + improvements <= 10,
        "{regressions} + {improvements} of 200"
    );
}

#[test]
fn a_20_percent_slowdown_is_found() {
    let [regressions, ..] = verdicts(1.2, 0.1, 2, 200);
    assert!(regressions >= 190, "{regressions} of 200");
}

#[test]
fn a_2_percent_slowdown_is_not_a_regression() {
    let [regressions, ..] = verdicts(1.02, 0.1, 3, 200);
    assert_eq!(regressions, 0);
}

#[test]
fn bigger_inputs_are_not_a_regression_per_megabyte() {
    // The candidate's files are twice as large and take twice as long: slower in ms, the same
    // in ms per MB.
    let sizes: Vec<f64> = (0..20).map(|i| 10.0 + f64::from(i)).collect();
    let base: Vec<f64> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| s * (3.0 + (i % 3) as f64 * 0.1))
        .collect();
    let big: Vec<f64> = sizes.iter().map(|s| s * 2.0).collect();
    let cand: Vec<f64> = base.iter().map(|d| d * 2.0).collect();
    let (b, c) = (
        sized_table(&base, Some(&sizes)),
        sized_table(&cand, Some(&big)),
    );
    let plain = compare(&b, &c, &CompareOptions::default()).unwrap();
    assert_eq!(plain[0].verdict, Verdict::Regression);
    let per_mb = CompareOptions {
        normalize_by: Some("file.size_mb".into()),
        ..CompareOptions::default()
    };
    let normalised = compare(&b, &c, &per_mb).unwrap();
    assert_eq!(normalised[0].verdict, Verdict::NoChange);
    assert_eq!(normalised[0].unit, "ms/MB");
    assert!((normalised[0].ratio - 1.0).abs() < 1e-9);
}

#[test]
#[ignore = "prints the operating characteristics for the README: cargo test -- --ignored"]
fn operating_characteristics() {
    for sigma in [0.05, 0.1, 0.2, 0.3] {
        let runs = 2000;
        let aa = verdicts(1.0, sigma, 10, runs);
        let small = verdicts(1.02, sigma, 11, runs);
        let big = verdicts(1.2, sigma, 12, runs);
        println!(
            "sigma {sigma}: A/A alarms {:.2} %, 2 % shift called regression {:.2} %, 20 % shift found {:.1} %",
            (aa[0] + aa[1]) as f64 / runs as f64 * 100.0,
            small[0] as f64 / runs as f64 * 100.0,
            big[0] as f64 / runs as f64 * 100.0
        );
    }
}
