//! Operating characteristics of `compare`, with fixed seeds: false alarms under A/A, power at a
//! 20 % slowdown, and a 2 % slowdown under the default 5 % minimum effect.
//!
//! Durations are log-normal (skewed, like run times) with σ = 0.1 on the log scale (CV ≈ 10 %),
//! n = 20 replicates per side, 200 comparisons per scenario.

use std::collections::BTreeMap;

use neuro_batch_analysis::compare::{CompareOptions, Verdict, compare};
use neuro_batch_analysis::{AttrValue, Span, SpanTable, Status};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal};

fn table(durations_ms: &[f64]) -> SpanTable {
    sized_table(durations_ms, None)
}

/// Spans of `skull_strip`, one per trace, the i-th with `attributes(i)`.
fn skull_strip_table(
    durations_ms: &[f64],
    attributes: impl Fn(usize) -> BTreeMap<String, AttrValue>,
) -> SpanTable {
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
            attributes: attributes(i),
        })
        .collect();
    SpanTable::build(spans).unwrap()
}

/// Spans of `skull_strip`, with `file.size_mb` when sizes are given.
fn sized_table(durations_ms: &[f64], sizes_mb: Option<&[f64]>) -> SpanTable {
    skull_strip_table(durations_ms, |i| {
        sizes_mb
            .map(|s| [("file.size_mb".to_owned(), AttrValue::Float(s[i]))].into())
            .unwrap_or_default()
    })
}

/// How often each verdict comes out over `runs` comparisons of n = 20 against n = 20, the
/// candidate's durations scaled by `shift`.
fn verdicts(shift: f64, sigma: f64, seed: u64, runs: usize) -> [usize; 4] {
    let mut rng = StdRng::seed_from_u64(seed);
    let dist = LogNormal::new(100f64.ln(), sigma).unwrap();
    let mut counts = [0; 4];
    for _ in 0..runs {
        let base: Vec<f64> = (0..20).map(|_| dist.sample(&mut rng)).collect();
        let cand: Vec<f64> = (0..20).map(|_| dist.sample(&mut rng) * shift).collect();
        let result = compare(&table(&base), &table(&cand), &CompareOptions::default()).unwrap();
        match result.spans[0].verdict {
            Verdict::Regression => counts[0] += 1,
            Verdict::Improvement => counts[1] += 1,
            Verdict::NoChange => counts[2] += 1,
            Verdict::Inconclusive => counts[3] += 1,
            Verdict::NotEnoughData => panic!("20 per side is enough"),
        }
    }
    counts
}

#[test]
fn a_a_comparisons_rarely_alarm() {
    let [regressions, improvements, ..] = verdicts(1.0, 0.1, 1, 200);
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
fn noisy_data_is_inconclusive_not_a_green_tick() {
    // CV ≈ 30 % at n = 20: the interval is about ×[0.83, 1.2], too wide to rule out 5 %.
    let [regressions, _, no_change, inconclusive] = verdicts(1.0, 0.3, 4, 200);
    assert!(inconclusive >= 180, "{inconclusive} of 200 inconclusive");
    assert!(no_change == 0 && regressions <= 10, "{no_change} no change");
    // Quiet data decides: CV ≈ 2 % gives an interval within ±5 %.
    let [_, _, no_change, _] = verdicts(1.0, 0.02, 5, 200);
    assert!(no_change >= 190, "{no_change} of 200 no change");
}

#[test]
fn spans_without_the_normalizing_key_are_not_compared() {
    let t = table(&[10.0, 11.0, 12.0, 13.0, 14.0, 15.0]);
    let per_mb = CompareOptions {
        normalize_by: Some("file.size_mb".into()),
        ..CompareOptions::default()
    };
    let out = compare(&t, &t, &per_mb).unwrap();
    assert!(out.spans.is_empty());
    assert_eq!(out.not_compared[0].span, "skull_strip");
    assert!(out.not_compared[0].reason.contains("no file.size_mb"));
}

/// `skull_strip` spans of subjects `00..n`, one per subject, with `bids.subject` (pairable).
fn subject_table(durations_ms: &[f64]) -> SpanTable {
    skull_strip_table(durations_ms, |i| {
        [("bids.subject".to_owned(), AttrValue::Str(format!("{i:02}")))].into()
    })
}

#[test]
fn pairing_by_subject_sees_through_differences_between_subjects() {
    // Subjects differ by CV ≈ 50 % (head sizes); a rerun of the same subject by 2 %.
    let mut rng = StdRng::seed_from_u64(6);
    let subjects = LogNormal::new(100f64.ln(), 0.5).unwrap();
    let noise = LogNormal::new(0.0, 0.02).unwrap();
    let truth: Vec<f64> = (0..16).map(|_| subjects.sample(&mut rng)).collect();
    let rerun = |shift: f64, rng: &mut StdRng| -> Vec<f64> {
        truth
            .iter()
            .map(|t| t * shift * noise.sample(rng))
            .collect()
    };
    let base = rerun(1.0, &mut rng);
    let (same, slower) = (rerun(1.0, &mut rng), rerun(1.1, &mut rng));
    let o = CompareOptions::default();
    let aa = compare(&subject_table(&base), &subject_table(&same), &o).unwrap();
    assert_eq!(aa.spans[0].paired, 16);
    assert_eq!(
        aa.spans[0].verdict,
        Verdict::NoChange,
        "{}",
        aa.spans[0].summary
    );
    let ab = compare(&subject_table(&base), &subject_table(&slower), &o).unwrap();
    assert_eq!(
        ab.spans[0].verdict,
        Verdict::Regression,
        "{}",
        ab.spans[0].summary
    );
    // The same figures without the subjects to pair them: the spread between subjects
    // swamps a 10 % slowdown.
    let unpaired = compare(&table(&base), &table(&slower), &o).unwrap();
    assert_eq!(unpaired.spans[0].paired, 0);
    assert_eq!(unpaired.spans[0].verdict, Verdict::Inconclusive);
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
    assert_eq!(plain.spans[0].verdict, Verdict::Regression);
    let per_mb = CompareOptions {
        normalize_by: Some("file.size_mb".into()),
        ..CompareOptions::default()
    };
    let normalised = compare(&b, &c, &per_mb).unwrap();
    assert_eq!(normalised.spans[0].verdict, Verdict::NoChange);
    assert_eq!(normalised.spans[0].unit, "ms/MB");
    assert!((normalised.spans[0].ratio - 1.0).abs() < 1e-9);
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

/// 16 subjects, each a `process_subject` root with four steps; subject `s`'s steps take
/// `base(step) × size(s)` ms, times `factor(step)` and 2 % noise on the candidate side.
fn subject_steps_table(seed: u64, factor: impl Fn(&str) -> f64) -> SpanTable {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = LogNormal::new(0.0, 0.02).unwrap();
    let mut spans = Vec::new();
    let span = |trace: usize, id: usize, parent: Option<usize>, name: &str, ms: f64| Span {
        trace_id: format!("{trace:032x}"),
        span_id: format!("{id:016x}"),
        parent_id: parent.map(|p| format!("{p:016x}")),
        name: name.into(),
        service: "neuro-batch".into(),
        start_ns: 0,
        end_ns: (ms * 1e6) as i64,
        status: Status::Ok,
        error_message: None,
        attributes: [(
            "bids.subject".to_owned(),
            AttrValue::Str(format!("{trace:02}")),
        )]
        .into(),
    };
    for s in 0..16 {
        let size = 1.0 + s as f64 / 8.0;
        let root = s * 10 + 1;
        let mut total = 0.0;
        for (k, (step, base)) in [("a", 40.0), ("b", 90.0), ("c", 30.0), ("d", 60.0)]
            .into_iter()
            .enumerate()
        {
            let ms = base * size * factor(step) * noise.sample(&mut rng);
            total += ms;
            spans.push(span(s, root + 1 + k, Some(root), step, ms));
        }
        spans.push(span(s, root, None, "process_subject", total));
    }
    SpanTable::build(spans).unwrap()
}

#[test]
fn a_busier_machine_moves_every_step_and_is_reported_not_flagged() {
    let base = subject_steps_table(1, |_| 1.0);
    let busy = subject_steps_table(2, |_| 1.3);
    let result = compare(&base, &busy, &CompareOptions::default()).unwrap();
    for s in &result.spans {
        assert_ne!(s.verdict, Verdict::Regression, "{}", s.summary);
    }
    let shift = result.run_shift.expect("four paired leaf steps");
    assert_eq!(shift.steps, ["a", "b", "c", "d"]);
    assert!((shift.ratio - 1.3).abs() < 0.03, "{shift:?}");
    assert!(shift.warning().is_some());
    // Compared absolutely, the same data is a regression everywhere.
    let absolute = CompareOptions {
        relative: false,
        ..CompareOptions::default()
    };
    let result = compare(&base, &busy, &absolute).unwrap();
    assert!(result.run_shift.is_none());
    assert!(
        result
            .spans
            .iter()
            .all(|s| s.verdict == Verdict::Regression)
    );
}

#[test]
fn one_slower_step_stands_out_on_a_busier_machine() {
    let base = subject_steps_table(3, |_| 1.0);
    let cand = subject_steps_table(4, |step| if step == "c" { 1.3 * 1.5 } else { 1.3 });
    let result = compare(&base, &cand, &CompareOptions::default()).unwrap();
    let verdict = |name: &str| {
        result
            .spans
            .iter()
            .find(|s| s.span == name)
            .unwrap()
            .verdict
    };
    assert_eq!(verdict("c"), Verdict::Regression);
    for step in ["a", "b", "d"] {
        assert_ne!(verdict(step), Verdict::Regression, "{step}");
    }
    // The slower step does not drag the shift: it is the median of four steps.
    let shift = result.run_shift.unwrap();
    assert!((shift.ratio - 1.3).abs() < 0.1, "{shift:?}");
}

#[test]
fn a_step_that_feels_the_load_more_is_not_a_regression() {
    // Under a ×1.3 shift, one memory-bound step slowing 12 % more than the others is the
    // machine, not the code: the minimum effect is widened to half the shift (×1.14).
    let base = subject_steps_table(5, |_| 1.0);
    let busy = subject_steps_table(6, |step| if step == "b" { 1.3 * 1.12 } else { 1.3 });
    let result = compare(&base, &busy, &CompareOptions::default()).unwrap();
    let shift = result.run_shift.as_ref().unwrap();
    assert!((shift.min_effect - 0.14).abs() < 0.01, "{shift:?}");
    for s in &result.spans {
        assert_ne!(s.verdict, Verdict::Regression, "{}", s.summary);
    }
    // On a quiet machine the same 12 % is one.
    let cand = subject_steps_table(6, |step| if step == "b" { 1.12 } else { 1.0 });
    let result = compare(&base, &cand, &CompareOptions::default()).unwrap();
    let b = result.spans.iter().find(|s| s.span == "b").unwrap();
    assert_eq!(b.verdict, Verdict::Regression, "{}", b.summary);
}
