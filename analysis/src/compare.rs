//! Comparing two runs span name by span name: did a stage get slower?
//!
//! Replicates are the spans of one name (one per file or subject). When (nearly, ≥ 80 %) every
//! replicate has a counterpart in the other run — same subject, file and occurrence, as when
//! both runs processed the same dataset — the comparison is **paired**: each subject is its own
//! control, so the differences between subjects (a bigger head takes longer) drop out and the
//! interval narrows to the run-to-run noise. Per name:
//! - a two-sided Wilcoxon signed-rank test of the candidate/baseline log ratios (paired), or a
//!   Mann-Whitney U test of candidate against baseline (unpaired);
//! - the Hodges-Lehmann estimate of the shift (ms), and of the *ratio*: the median Walsh
//!   average of the log ratios (paired) or the shift of the log durations (unpaired),
//!   exponentiated, with its distribution-free interval (level 1 − alpha);
//! - a bootstrap percentile interval (level 1 − alpha) of the ratio of medians, candidate over
//!   baseline, for reading;
//! - Benjamini-Hochberg across names.
//!
//! What is compared ([`Metric`]): CPU time (`cpu_ms`: a step's `step.cpu_ms`, a container's sum
//! of its steps') by default when both runs have it, since other work on a shared CI runner
//! moves wall time but hardly the CPU time of our own threads; or wall time (`duration_ms`),
//! which also sees I/O and waiting. With CPU as the metric the wall-time comparison is kept
//! beside it, for reading.
//!
//! Verdict: **regression** when the corrected p-value is below alpha *and* the whole
//! Hodges-Lehmann ratio interval lies above 1 + min_effect (the slowdown is real and at least
//! the practical minimum); **improvement** when it lies below 1 / (1 + min_effect); **no
//! change** when the whole interval lies within (1 / (1 + min_effect), 1 + min_effect): any
//! change is smaller than the minimum; **inconclusive** when the interval reaches past a bound
//! without lying beyond it (e.g. it holds both 1 and 1 + min_effect): the data can neither show
//! nor rule out a change of the minimum effect, and [`SpanComparison::needed_n`] estimates the
//! replicates per side that would decide it; **not enough data** when a side has fewer spans
//! than the smallest sample whose exact two-sided Mann-Whitney p-value can pass the strictest
//! BH threshold. The
//! Hodges-Lehmann interval decides rather than the bootstrap one because it is the tighter of
//! the two for the same data (medians waste information): at n = 20 per side and 10 % noise it
//! found a 20 % slowdown in 97 % of 2000 simulations, the median interval in 188 of 200.
//!
//! **Relative to the run** (the default, [`CompareOptions::relative`]): with pairs and at least
//! three leaf steps, each span's log ratio is taken relative to the same subject's other steps,
//! so what moved every step alike — a busier machine — cancels out, and is reported once as the
//! [`RunShift`] (see [`crate::shift`]), whose size also widens the minimum effect of these
//! verdicts, as steps feel a busy machine unevenly. The shift in ms stays the raw median
//! difference.
//!
//! With `normalize_by` (e.g. `file.size_mb`), durations are divided by that attribute first
//! (ms per MB), for runs whose inputs differ.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use std::collections::HashMap;

use crate::shift::{self, Reference, RunShift};
use crate::stats;
use crate::table::{self, SpanTable, TableError, Values};

/// Attributes that name a replicate, for pairing: the subject and its file.
const SUBJECT: &str = "bids.subject";
const FILE_NAME: &str = "file.name";
use crate::units::unit_of;

/// What the comparison measures per span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// CPU time of the threads that worked for the span ([`table::CPU_MS`]).
    Cpu,
    /// Wall time ([`table::DURATION_MS`]).
    Wall,
}

impl Metric {
    /// Words for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Wall => "wall",
        }
    }

    /// CPU when both tables have CPU figures, else wall time.
    pub fn available(baseline: &SpanTable, candidate: &SpanTable) -> Metric {
        if baseline.has_cpu() && candidate.has_cpu() {
            Metric::Cpu
        } else {
            Metric::Wall
        }
    }

    fn column(self) -> &'static str {
        match self {
            Metric::Cpu => table::CPU_MS,
            Metric::Wall => table::DURATION_MS,
        }
    }
}

/// Comparison settings.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// What is compared.
    pub metric: Metric,
    /// Significance level (BH-corrected) and 1 − confidence level of the interval.
    pub alpha: f64,
    /// Smallest slowdown that counts, as a fraction (0.05 = 5 %).
    pub min_effect: f64,
    /// Divide each duration by this numeric attribute first (e.g. `file.size_mb`).
    pub normalize_by: Option<String>,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Seed of the bootstrap (the same inputs give the same interval).
    pub seed: u64,
    /// With pairs, compare each span relative to the same subject's other steps (see
    /// [`crate::shift`]); `false` compares absolute figures.
    pub relative: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            metric: Metric::Wall,
            alpha: 0.05,
            min_effect: 0.05,
            normalize_by: None,
            resamples: 2000,
            seed: 0x6e62,
            relative: true,
        }
    }
}

/// The outcome for one span name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly slower by at least the minimum effect.
    Regression,
    /// Significantly faster by at least the minimum effect.
    Improvement,
    /// Any change is smaller than the minimum effect.
    NoChange,
    /// The interval can neither show nor rule out a change of the minimum effect.
    Inconclusive,
    /// Too few spans on a side to ever reach significance.
    NotEnoughData,
}

impl Verdict {
    /// Words for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::NoChange => "no change",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotEnoughData => "not enough data",
        }
    }
}

/// One span name compared.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanComparison {
    /// Span name.
    pub span: String,
    /// What was compared.
    pub metric: Metric,
    /// `ms`, or `ms/<unit>` when normalised.
    pub unit: String,
    /// Baseline replicates.
    pub baseline_n: usize,
    /// Candidate replicates.
    pub candidate_n: usize,
    /// Baseline median.
    pub baseline_median: f64,
    /// Candidate median.
    pub candidate_median: f64,
    /// Candidate median over baseline median.
    pub ratio: f64,
    /// Bootstrap percentile interval of `ratio`, level 1 − alpha.
    pub ratio_ci: Option<(f64, f64)>,
    /// Hodges-Lehmann ratio: the typical candidate/baseline factor (exp of the log shift).
    pub hl_ratio: Option<f64>,
    /// Moses' interval of `hl_ratio`, level 1 − alpha; the verdict reads this one.
    pub hl_ratio_ci: Option<(f64, f64)>,
    /// Hodges-Lehmann shift, candidate − baseline, in `unit`.
    pub shift: Option<f64>,
    /// Mann-Whitney U of the candidate sample, or with pairs the signed-rank W⁺ of the
    /// candidate/baseline log ratios.
    pub u: Option<f64>,
    /// Two-sided p-value.
    pub p: Option<f64>,
    /// Benjamini-Hochberg corrected p-value.
    pub q: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Spans needed per side: the minimum for a test when there are too few; for an
    /// inconclusive verdict, an estimate of what would make the interval decide (the
    /// interval narrows as 1/√n); 0 otherwise.
    pub needed_n: usize,
    /// Pairs compared (same subject, file and occurrence on both sides; 0: unpaired).
    pub paired: usize,
    /// One line for people.
    pub summary: String,
    /// With CPU as the metric: the same span compared on wall time, for reading.
    pub wall: Option<WallReading>,
}

/// The wall-time side of a CPU comparison.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct WallReading {
    /// Hodges-Lehmann ratio of wall times.
    pub hl_ratio: Option<f64>,
    /// Its interval.
    pub hl_ratio_ci: Option<(f64, f64)>,
    /// What the verdict would be on wall time.
    pub verdict: Verdict,
}

/// A span name both runs have that could not be compared, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NotCompared {
    /// Span name.
    pub span: String,
    /// Why (e.g. the spans lack the `--normalize-by` attribute).
    pub reason: String,
}

/// Every span name of both runs: compared, or said why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparisons {
    /// Compared span names, largest baseline total first.
    pub spans: Vec<SpanComparison>,
    /// Span names in both runs left out.
    pub not_compared: Vec<NotCompared>,
    /// What moved every step alike, when the spans were compared relative to it.
    pub run_shift: Option<RunShift>,
}

/// Every span name present in both runs, compared on `options.metric` (and, for CPU, on wall
/// time beside it).
pub fn compare(
    baseline: &SpanTable,
    candidate: &SpanTable,
    options: &CompareOptions,
) -> Result<Comparisons, TableError> {
    let mut out = compare_on(baseline, candidate, options)?;
    if options.metric == Metric::Cpu {
        let wall = CompareOptions {
            metric: Metric::Wall,
            ..options.clone()
        };
        let walls = compare_on(baseline, candidate, &wall)?.spans;
        for c in &mut out.spans {
            c.wall = walls
                .iter()
                .find(|w| w.span == c.span)
                .map(|w| WallReading {
                    hl_ratio: w.hl_ratio,
                    hl_ratio_ci: w.hl_ratio_ci,
                    verdict: w.verdict,
                });
        }
    }
    Ok(out)
}

fn compare_on(
    baseline: &SpanTable,
    candidate: &SpanTable,
    options: &CompareOptions,
) -> Result<Comparisons, TableError> {
    let (compared, not_compared) = samples(baseline, candidate, options)?;
    let unit = match &options.normalize_by {
        Some(key) => format!("ms/{}", unit_of(key).name_or(key)),
        None => "ms".to_owned(),
    };
    let m = compared.len().max(1);
    let needed = min_n(options.alpha, m);
    let needed_pairs = min_pairs(options.alpha, m);
    // Pair when (nearly) every replicate has its counterpart: then the subjects' differences
    // cancel out.
    let paired = |(_, b, c, pairs): &Compared| {
        pairs.len() >= needed_pairs && pairs.len() * 5 >= 4 * b.values.len().min(c.values.len())
    };
    let reference = options
        .relative
        .then(|| reference(baseline, &compared, paired))
        .transpose()?
        .flatten();
    let run_shift = reference.as_ref().and_then(|r| RunShift::of(r, options));
    // Relative verdicts allow for steps feeling the load unevenly (see `crate::shift`).
    let options = &CompareOptions {
        min_effect: run_shift
            .as_ref()
            .map_or(options.min_effect, |s| s.min_effect),
        ..options.clone()
    };
    let mut out: Vec<SpanComparison> = compared
        .iter()
        .map(|entry| {
            let (name, b, c, pairs) = entry;
            let paired = paired(entry).then(|| Paired::of(name, pairs, reference.as_ref()));
            one(
                name,
                &b.values,
                &c.values,
                paired.as_ref(),
                &unit,
                needed,
                options,
            )
        })
        .collect();
    decide(&mut out, options);
    Ok(Comparisons {
        spans: out,
        not_compared,
        run_shift,
    })
}

/// One span name's figures on both sides, and the pairs among them.
type Compared = (String, Sample, Sample, Vec<Pair>);

/// The figures of every span name both runs have, or why a name has none.
fn samples(
    baseline: &SpanTable,
    candidate: &SpanTable,
    options: &CompareOptions,
) -> Result<(Vec<Compared>, Vec<NotCompared>), TableError> {
    let base_names = baseline.span_names()?;
    let cand_names = candidate.span_names()?;
    let mut compared = Vec::new();
    let mut not_compared = Vec::new();
    for name in base_names.into_iter().filter(|n| cand_names.contains(n)) {
        let b = values(&baseline.of_name(&name)?, options)?;
        let c = values(&candidate.of_name(&name)?, options)?;
        match b.and_then(|b| Ok((b, c?))) {
            Ok((b, c)) => {
                let pairs = pairs(&b, &c);
                compared.push((name, b, c, pairs));
            }
            Err(reason) => not_compared.push(NotCompared { span: name, reason }),
        }
    }
    Ok((compared, not_compared))
}

/// The paired leaf steps' log ratios per subject, when there are at least
/// [`shift::MIN_LEAVES`] such steps to compare each span against.
fn reference(
    baseline: &SpanTable,
    compared: &[Compared],
    paired: impl Fn(&Compared) -> bool,
) -> Result<Option<Reference>, TableError> {
    let leaves = shift::leaf_names(baseline)?;
    let mut reference = Reference::default();
    for entry in compared
        .iter()
        .filter(|e| leaves.contains(&e.0) && paired(e))
    {
        for p in &entry.3 {
            reference.add(&p.subject, &entry.0, p.log_ratio());
        }
    }
    Ok((reference.steps().len() >= shift::MIN_LEAVES).then_some(reference))
}

/// Benjamini-Hochberg across the tested names, then each verdict.
fn decide(out: &mut [SpanComparison], options: &CompareOptions) {
    let tested: Vec<usize> = (0..out.len()).filter(|&i| out[i].p.is_some()).collect();
    let q = stats::benjamini_hochberg(
        &tested
            .iter()
            .map(|&i| out[i].p.unwrap_or(1.0))
            .collect::<Vec<_>>(),
    );
    for (&i, q) in tested.iter().zip(q) {
        let c = &mut out[i];
        c.q = Some(q);
        c.verdict = verdict(q, c.hl_ratio_ci, options);
        if c.verdict == Verdict::Inconclusive {
            c.needed_n = replicates_to_decide(c, options);
        }
        c.summary = summary(c, options);
    }
}

/// The figures of one span name on one side, each with the replicate it belongs to.
struct Sample {
    values: Vec<f64>,
    /// The replicate of each figure, when the spans say.
    keys: Vec<Option<Replicate>>,
}

/// Which replicate a span is: `subject/file#k` (the k-th span of the name for that file).
#[derive(Debug, Clone)]
struct Replicate {
    key: String,
    subject: String,
}

/// A replicate's figure on both sides.
struct Pair {
    subject: String,
    base: f64,
    cand: f64,
}

impl Pair {
    fn log_ratio(&self) -> f64 {
        let ln = |x: f64| x.max(f64::MIN_POSITIVE).ln();
        ln(self.cand) - ln(self.base)
    }
}

/// What a paired comparison tests: log ratios (relative to the subject's other steps when
/// there is a reference) and the raw differences.
struct Paired {
    log_ratios: Vec<f64>,
    diffs: Vec<f64>,
}

impl Paired {
    /// Pairs without a reference (their subject has too few other steps) are left out of a
    /// relative comparison.
    fn of(name: &str, pairs: &[Pair], reference: Option<&Reference>) -> Paired {
        let log_ratios = pairs
            .iter()
            .filter_map(|p| match reference {
                Some(r) => Some(p.log_ratio() - r.of(&p.subject, name)?),
                None => Some(p.log_ratio()),
            })
            .collect();
        Paired {
            log_ratios,
            diffs: pairs.iter().map(|p| p.cand - p.base).collect(),
        }
    }
}

/// Replicates of both sides that belong together: same subject, file and occurrence.
fn pairs(base: &Sample, cand: &Sample) -> Vec<Pair> {
    let index: HashMap<&str, f64> = base
        .keys
        .iter()
        .zip(&base.values)
        .filter_map(|(k, v)| Some((k.as_ref()?.key.as_str(), *v)))
        .collect();
    cand.keys
        .iter()
        .zip(&cand.values)
        .filter_map(|(k, v)| {
            let k = k.as_ref()?;
            Some(Pair {
                subject: k.subject.clone(),
                base: *index.get(k.key.as_str())?,
                cand: *v,
            })
        })
        .collect()
}

/// The replicate of each row: subject, file name and occurrence, where the table has them.
fn replicate_keys(rows: &SpanTable) -> Result<Vec<Option<Replicate>>, TableError> {
    if !rows.has_column(SUBJECT) {
        return Ok(vec![None; rows.len()]);
    }
    let subjects = rows.strings(SUBJECT)?;
    let files = if rows.has_column(FILE_NAME) {
        rows.strings(FILE_NAME)?
    } else {
        vec![None; rows.len()]
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    Ok(subjects
        .into_iter()
        .zip(files)
        .map(|(s, f)| {
            let subject = s?;
            let key = format!("{subject}/{}", f.unwrap_or_default());
            let k = seen.entry(key.clone()).or_default();
            *k += 1;
            Some(Replicate {
                key: format!("{key}#{k}"),
                subject,
            })
        })
        .collect())
}

/// The figures compared for one span name, or why there are none.
fn values(
    rows: &SpanTable,
    options: &CompareOptions,
) -> Result<Result<Sample, String>, TableError> {
    let metric = options.metric;
    let d: Vec<Option<f64>> = if rows.has_column(metric.column()) {
        rows.floats(metric.column())?
    } else {
        Vec::new()
    };
    if d.iter().all(Option::is_none) {
        return Ok(Err(format!("no {} figures", metric.as_str())));
    }
    let keys = replicate_keys(rows)?;
    let per: Vec<Option<f64>> = match &options.normalize_by {
        None => d,
        Some(key) => {
            if !rows.attribute_keys().contains(key) {
                return Ok(Err(format!("no {key} on these spans")));
            }
            let Values::Numeric(x) = rows.values(key)? else {
                return Ok(Err(format!("{key} is not numeric")));
            };
            let unit = unit_of(key);
            d.into_iter()
                .zip(x)
                .map(|(d, x)| {
                    let x = unit.apply(x?);
                    (x > 0.0).then(|| d.map(|d| d / x)).flatten()
                })
                .collect()
        }
    };
    let (values, keys): (Vec<f64>, Vec<Option<Replicate>>) = per
        .into_iter()
        .zip(keys)
        .filter_map(|(v, k)| Some((v?, k)))
        .unzip();
    Ok(if values.is_empty() {
        Err(match &options.normalize_by {
            Some(key) => format!("no positive {key} on these spans"),
            None => format!("no {} figures", metric.as_str()),
        })
    } else {
        Ok(Sample { values, keys })
    })
}

/// The smallest number of pairs whose most extreme exact two-sided signed-rank p-value,
/// 2 / 2ⁿ, is below alpha / m.
pub fn min_pairs(alpha: f64, m: usize) -> usize {
    (1..=1000)
        .find(|&n| 2.0 / 2f64.powi(n as i32) < alpha / m as f64)
        .unwrap_or(1000)
}

/// The smallest n (per side) whose most extreme exact two-sided Mann-Whitney p-value,
/// 2 / C(2n, n), is below alpha / m, the strictest Benjamini-Hochberg threshold.
pub fn min_n(alpha: f64, m: usize) -> usize {
    let mut n = 1usize;
    loop {
        // C(2n, n) computed in floating point.
        let c: f64 = (1..=n).map(|k| (n + k) as f64 / k as f64).product();
        if 2.0 / c < alpha / m as f64 || n >= 1000 {
            return n;
        }
        n += 1;
    }
}

fn one(
    name: &str,
    base: &[f64],
    cand: &[f64],
    paired: Option<&Paired>,
    unit: &str,
    needed: usize,
    options: &CompareOptions,
) -> SpanComparison {
    let (bm, cm) = (stats::median(base), stats::median(cand));
    let mut c = SpanComparison {
        span: name.to_owned(),
        metric: options.metric,
        unit: unit.to_owned(),
        baseline_n: base.len(),
        candidate_n: cand.len(),
        baseline_median: bm,
        candidate_median: cm,
        ratio: cm / bm,
        ratio_ci: None,
        hl_ratio: None,
        hl_ratio_ci: None,
        shift: None,
        u: None,
        p: None,
        q: None,
        verdict: Verdict::NotEnoughData,
        needed_n: needed,
        paired: 0,
        summary: String::new(),
        wall: None,
    };
    if base.len() < needed || cand.len() < needed {
        c.summary = format!(
            "not enough data: {} baseline and {} candidate spans, {needed} needed on each side",
            base.len(),
            cand.len()
        );
        return c;
    }
    c.needed_n = 0;
    c.ratio_ci = bootstrap_ratio(base, cand, options);
    let ln = |x: f64| x.max(f64::MIN_POSITIVE).ln();
    let log = |v: &[f64]| -> Vec<f64> { v.iter().map(|&x| ln(x)).collect() };
    let estimate = match paired {
        Some(paired) => {
            c.paired = paired.log_ratios.len();
            let sr = stats::wilcoxon(&paired.log_ratios);
            c.u = sr.map(|s| s.w_plus);
            // Ties everywhere (every ratio exactly 1): no evidence of a change at all.
            c.p = Some(sr.map_or(1.0, |s| s.p));
            c.shift = Some(stats::median(&paired.diffs));
            stats::walsh_ci(&paired.log_ratios, options.alpha)
        }
        None => {
            let mw = stats::mann_whitney(cand, base);
            c.u = mw.map(|m| m.u);
            c.p = mw.map(|m| m.p);
            c.shift = Some(stats::hodges_lehmann(base, cand));
            stats::hodges_lehmann_ci(&log(base), &log(cand), options.alpha)
        }
    };
    if let Some((est, lo, hi)) = estimate {
        c.hl_ratio = Some(est.exp());
        c.hl_ratio_ci = Some((lo.exp(), hi.exp()));
    }
    c
}

/// Percentile bootstrap interval (level 1 − alpha) of median(candidate) / median(baseline),
/// resampling each side independently.
fn bootstrap_ratio(base: &[f64], cand: &[f64], options: &CompareOptions) -> Option<(f64, f64)> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut ratios = Vec::with_capacity(options.resamples);
    let mut b = vec![0.0; base.len()];
    let mut c = vec![0.0; cand.len()];
    for _ in 0..options.resamples {
        for x in b.iter_mut() {
            *x = base[rng.random_range(0..base.len())];
        }
        for x in c.iter_mut() {
            *x = cand[rng.random_range(0..cand.len())];
        }
        let r = stats::median(&c) / stats::median(&b);
        if r.is_finite() {
            ratios.push(r);
        }
    }
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some((
        stats::quantile(&ratios, options.alpha / 2.0),
        stats::quantile(&ratios, 1.0 - options.alpha / 2.0),
    ))
}

/// The verdict an interval and a (corrected) p-value give.
pub(crate) fn verdict(q: f64, ci: Option<(f64, f64)>, options: &CompareOptions) -> Verdict {
    let (slower, faster) = (1.0 + options.min_effect, 1.0 / (1.0 + options.min_effect));
    match ci {
        Some((lo, _)) if q < options.alpha && lo > slower => Verdict::Regression,
        Some((_, hi)) if q < options.alpha && hi < faster => Verdict::Improvement,
        Some((lo, hi)) if lo > faster && hi < slower => Verdict::NoChange,
        // Without an interval (ties everywhere) the test alone cannot speak for the size.
        _ => Verdict::Inconclusive,
    }
}

/// Replicates per side that would let an interval like this one decide: in log space its
/// half-width shrinks as 1/√n, and it must fit between its centre and the nearer bound.
fn replicates_to_decide(c: &SpanComparison, options: &CompareOptions) -> usize {
    let n = match c.paired {
        0 => c.baseline_n.min(c.candidate_n),
        pairs => pairs,
    }
    .max(1) as f64;
    let (Some(r), Some((lo, hi))) = (c.hl_ratio, c.hl_ratio_ci) else {
        return 0;
    };
    let (centre, half) = (r.ln(), (hi.ln() - lo.ln()) / 2.0);
    let bound = options.min_effect.ln_1p();
    let room = (centre - bound).abs().min((centre + bound).abs());
    if room <= 0.0 || !half.is_finite() {
        return usize::MAX;
    }
    let needed = n * (half / room).powi(2);
    if needed.is_finite() && needed < 1e9 {
        needed.ceil() as usize
    } else {
        usize::MAX
    }
}

fn summary(c: &SpanComparison, options: &CompareOptions) -> String {
    let ci = match (c.hl_ratio, c.hl_ratio_ci) {
        (Some(r), Some((lo, hi))) => format!(", typical ×{r:.3} [{lo:.3}, {hi:.3}]"),
        _ => String::new(),
    };
    let shift = c
        .shift
        .map_or_else(String::new, |s| format!(", shift {s:+.3} {}", c.unit));
    let what = match c.verdict {
        Verdict::Regression => format!("slower by more than {:.0} %", options.min_effect * 100.0),
        Verdict::Improvement => format!("faster by more than {:.0} %", options.min_effect * 100.0),
        Verdict::NoChange => "no change beyond the minimum effect".to_owned(),
        Verdict::Inconclusive => match c.needed_n {
            usize::MAX => "inconclusive: the typical ratio sits on the minimum effect".to_owned(),
            n => format!("inconclusive: about {n} spans per side would decide"),
        },
        Verdict::NotEnoughData => "not enough data".to_owned(),
    };
    format!(
        "{} ({}): median {:.3} → {:.3} {} (×{:.3}{ci}{shift}), q = {:.2e}: {what}",
        c.span,
        c.metric.as_str(),
        c.baseline_median,
        c.candidate_median,
        c.unit,
        c.ratio,
        c.q.unwrap_or(f64::NAN)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_sample_sizes() {
        // 2/C(8,4) = 0.029 < 0.05 with one test; with 8 tests 0.05/8 needs 2/C(12,6) = 0.0022.
        assert_eq!(min_n(0.05, 1), 4);
        assert_eq!(min_n(0.05, 8), 6);
    }

    #[test]
    fn verdicts_need_significance_and_the_whole_interval_beyond_the_minimum() {
        let o = CompareOptions::default();
        assert_eq!(verdict(0.01, Some((1.06, 1.3)), &o), Verdict::Regression);
        assert_eq!(verdict(0.01, Some((0.7, 0.9)), &o), Verdict::Improvement);
        // Within the minimum effect either way: no change, significant or not.
        assert_eq!(verdict(0.01, Some((1.01, 1.04)), &o), Verdict::NoChange);
        assert_eq!(verdict(0.6, Some((0.97, 1.03)), &o), Verdict::NoChange);
        // Reaching past a bound without lying beyond it: undecided.
        assert_eq!(verdict(0.01, Some((1.04, 1.3)), &o), Verdict::Inconclusive);
        assert_eq!(verdict(0.2, Some((1.06, 1.3)), &o), Verdict::Inconclusive);
        assert_eq!(verdict(0.5, Some((0.9, 1.12)), &o), Verdict::Inconclusive);
        assert_eq!(verdict(0.5, None, &o), Verdict::Inconclusive);
    }

    #[test]
    fn a_wide_interval_asks_for_more_replicates() {
        let o = CompareOptions::default();
        let mut c = one("s", &[1.0; 8], &[1.0; 8], None, "ms", 4, &o);
        // Typical ×1.0 with an interval ×[0.9, 1.11] (half-width ln 1.11 ≈ 0.104 in log
        // space) from 8 per side must shrink below ln 1.05 ≈ 0.049: (0.104/0.049)² × 8 ≈ 36.
        c.hl_ratio = Some(1.0);
        c.hl_ratio_ci = Some((0.9, 1.0 / 0.9));
        let n = replicates_to_decide(&c, &o);
        assert!((34..=40).contains(&n), "{n}");
        // Centred on the bound itself, no sample size decides.
        c.hl_ratio = Some(1.05);
        assert_eq!(replicates_to_decide(&c, &o), usize::MAX);
    }
}

/// Version tag of the comparison's JSON shape.
pub const SCHEMA: &str = "neuro-batch.compare/v3";

/// A whole comparison, as `neuro-batch compare` prints it (stable JSON).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CompareReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Where the baseline came from.
    pub baseline: crate::SourceInfo,
    /// Where the candidate came from.
    pub candidate: crate::SourceInfo,
    /// Significance level.
    pub alpha: f64,
    /// Minimum practical effect, as a fraction.
    pub min_effect: f64,
    /// What was compared.
    pub metric: Metric,
    /// The attribute durations were divided by, if any.
    pub normalize_by: Option<String>,
    /// Per span name present in both runs.
    pub spans: Vec<SpanComparison>,
    /// Span names in both runs that could not be compared.
    pub not_compared: Vec<NotCompared>,
    /// Span names with a regression verdict.
    pub regressions: Vec<String>,
    /// Span names with an inconclusive verdict.
    pub inconclusive: Vec<String>,
    /// What moved every step of a subject alike; present when the spans were compared
    /// relative to it ([`crate::shift`]).
    pub run_shift: Option<RunShift>,
    /// Differences between the two runs that make the comparison doubtful (subjects, inputs,
    /// threads, settings), and notes from the sources.
    pub warnings: Vec<String>,
}

impl CompareReport {
    /// Assembles the report.
    pub fn new(
        baseline: crate::SourceInfo,
        candidate: crate::SourceInfo,
        options: &CompareOptions,
        comparisons: Comparisons,
        mut warnings: Vec<String>,
    ) -> Self {
        warnings.extend(comparisons.run_shift.as_ref().and_then(RunShift::warning));
        let with = |v: Verdict| -> Vec<String> {
            comparisons
                .spans
                .iter()
                .filter(|s| s.verdict == v)
                .map(|s| s.span.clone())
                .collect()
        };
        CompareReport {
            schema: SCHEMA,
            baseline,
            candidate,
            alpha: options.alpha,
            min_effect: options.min_effect,
            metric: options.metric,
            normalize_by: options.normalize_by.clone(),
            regressions: with(Verdict::Regression),
            inconclusive: with(Verdict::Inconclusive),
            spans: comparisons.spans,
            not_compared: comparisons.not_compared,
            run_shift: comparisons.run_shift,
            warnings,
        }
    }
}
