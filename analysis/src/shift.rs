//! The run shift: what moved every step of a subject alike.
//!
//! On a shared or virtual machine other work moves even the CPU time of our own threads
//! (caches, memory bandwidth and SMT siblings are shared; the host's scheduler steals time the
//! guest counts as its own). In 20 rounds of the same code on a busy 2-core VM, every step of a
//! run moved *together*, by up to ±40 % from one run to the next — while a change to one stage
//! moves that stage. So when both runs processed the same subjects (the comparison is paired),
//! each span is compared **relative to the same subject's other steps**: its log ratio,
//! candidate over baseline, minus the median log ratio of that subject's other leaf steps
//! (steps no span is a child of). What every step shared cancels out; a stage that got slower
//! stands out against the others.
//!
//! What cancels is reported as the [`RunShift`]: per subject the median log ratio of all its
//! leaf steps, and across subjects their Walsh-average (Hodges-Lehmann) estimate with its
//! interval and a signed-rank test. A shift beyond the minimum effect is either the machine or
//! a change that slows every step alike, and CPU time cannot tell the two apart: the report
//! says so as a warning rather than calling it a regression.
//!
//! Steps do not all feel a busy machine alike: memory-bound ones (decompression,
//! normalization) move more than compute-bound ones. In 20 rounds of the same code on a busy
//! 2-core VM, a step's interval reached beyond the others' by up to 0.44 of the common shift
//! (in log terms), and only in the rounds whose shift was large (×0.83, ×1.20, ×1.30). So the
//! minimum effect of the relative verdicts is widened to [`LOAD_SENSITIVITY`] of the shift
//! ([`RunShift::min_effect`]): under a ×1.3 shift a step must move ≥ 14 % against the others.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::compare::{CompareOptions, Verdict};
use crate::stats;
use crate::table::{self, SpanTable, TableError};

/// The share of the run shift (in log terms) a step may move against the others from load
/// alone; see the module notes.
pub const LOAD_SENSITIVITY: f64 = 0.5;

/// Fewest leaf step names for a relative comparison: each step's reference is the median of
/// the others, so at least two others.
pub const MIN_LEAVES: usize = 3;

/// Span names no span of `table` is a child of: the steps that do the work.
pub fn leaf_names(table: &SpanTable) -> Result<BTreeSet<String>, TableError> {
    let names = table.strings(table::NAME)?;
    let ids = table.strings(table::SPAN_ID)?;
    let parents: HashSet<String> = table
        .strings(table::PARENT_ID)?
        .into_iter()
        .flatten()
        .collect();
    let mut with_children = HashSet::new();
    let mut all = BTreeSet::new();
    for (name, id) in names.into_iter().zip(ids) {
        let Some(name) = name else { continue };
        if id.is_some_and(|id| parents.contains(&id)) {
            with_children.insert(name.clone());
        }
        all.insert(name);
    }
    Ok(all
        .into_iter()
        .filter(|n| !with_children.contains(n))
        .collect())
}

/// Leaf steps' log ratios (candidate over baseline), per subject.
#[derive(Debug, Default)]
pub struct Reference {
    by_subject: HashMap<String, Vec<(String, f64)>>,
    steps: BTreeSet<String>,
}

impl Reference {
    /// Records one paired leaf span of `subject`.
    pub fn add(&mut self, subject: &str, step: &str, log_ratio: f64) {
        self.steps.insert(step.to_owned());
        self.by_subject
            .entry(subject.to_owned())
            .or_default()
            .push((step.to_owned(), log_ratio));
    }

    /// The leaf step names recorded.
    pub fn steps(&self) -> &BTreeSet<String> {
        &self.steps
    }

    /// The median log ratio of `subject`'s leaf steps other than `step` (all of them for a
    /// span that is not a leaf), or `None` with fewer than two.
    pub fn of(&self, subject: &str, step: &str) -> Option<f64> {
        let others: Vec<f64> = self
            .by_subject
            .get(subject)?
            .iter()
            .filter(|(s, _)| s != step)
            .map(|&(_, r)| r)
            .collect();
        (others.len() >= 2).then(|| stats::median(&others))
    }

    /// Per subject, the median log ratio of all its leaf steps (subjects with fewer than
    /// [`MIN_LEAVES`] left out).
    fn per_subject(&self) -> Vec<f64> {
        let mut subjects: Vec<&String> = self.by_subject.keys().collect();
        subjects.sort();
        subjects
            .into_iter()
            .filter_map(|s| {
                let r: Vec<f64> = self.by_subject[s].iter().map(|&(_, r)| r).collect();
                (r.len() >= MIN_LEAVES).then(|| stats::median(&r))
            })
            .collect()
    }
}

/// What moved every step of a subject alike, candidate over baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunShift {
    /// The leaf steps it is taken over.
    pub steps: Vec<String>,
    /// Subjects it is estimated from.
    pub subjects: usize,
    /// Typical factor (Hodges-Lehmann, exponentiated).
    pub ratio: f64,
    /// Its interval, level 1 − alpha.
    pub ratio_ci: Option<(f64, f64)>,
    /// Two-sided signed-rank p-value (one test: not corrected).
    pub p: Option<f64>,
    /// Read like a span's verdict; a regression or improvement here is a warning, not a
    /// verdict on the code.
    pub verdict: Verdict,
    /// The minimum effect the relative span verdicts used: the asked-for one, widened to
    /// [`LOAD_SENSITIVITY`] of the shift.
    pub min_effect: f64,
}

impl RunShift {
    /// The shift `reference` holds, or `None` when too few subjects have enough leaf steps
    /// for a test.
    pub fn of(reference: &Reference, options: &CompareOptions) -> Option<RunShift> {
        let d = reference.per_subject();
        if d.len() < crate::compare::min_pairs(options.alpha, 1) {
            return None;
        }
        let (est, lo, hi) = stats::walsh_ci(&d, options.alpha)?;
        let p = stats::wilcoxon(&d).map_or(1.0, |s| s.p);
        let ci = Some((lo.exp(), hi.exp()));
        let widened = (LOAD_SENSITIVITY * est.abs()).exp_m1();
        Some(RunShift {
            steps: reference.steps().iter().cloned().collect(),
            subjects: d.len(),
            ratio: est.exp(),
            ratio_ci: ci,
            p: Some(p),
            verdict: crate::compare::verdict(p, ci, options),
            min_effect: options.min_effect.max(widened),
        })
    }

    /// Every step moved together by more than the minimum effect.
    pub fn is_beyond_minimum(&self) -> bool {
        matches!(self.verdict, Verdict::Regression | Verdict::Improvement)
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let ci = self
            .ratio_ci
            .map_or_else(String::new, |(lo, hi)| format!(" [{lo:.3}, {hi:.3}]"));
        format!(
            "every step of a subject moved together by ×{:.3}{ci} ({} subjects, {}); span \
             verdicts are relative to it, with a minimum effect of {:.0} %",
            self.ratio,
            self.subjects,
            self.steps.join(", "),
            self.min_effect * 100.0
        )
    }

    /// The warning when the shift is beyond the minimum effect.
    pub fn warning(&self) -> Option<String> {
        self.is_beyond_minimum().then(|| {
            format!(
                "{}: a different machine load or a change that slows every step alike; CPU \
                 time cannot tell them apart (rerun both sides on one machine back to back, or \
                 compare with --absolute on a quiet dedicated machine)",
                self.summary()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_reference_leaves_the_step_out() {
        let mut r = Reference::default();
        for (step, x) in [("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 2.0)] {
            r.add("s1", step, x);
        }
        // d's own slowdown does not move its reference; the others' reference is the median
        // of the other three, which d cannot drag far.
        assert_eq!(r.of("s1", "d"), Some(0.2));
        assert_eq!(r.of("s1", "a"), Some(0.3));
        assert_eq!(r.of("s1", "container"), Some(0.25));
        assert_eq!(r.of("s2", "a"), None);
        r.add("s2", "a", 0.1);
        r.add("s2", "b", 0.1);
        assert_eq!(r.of("s2", "a"), None, "one other step is not a reference");
    }

    #[test]
    fn a_common_shift_is_measured_and_flagged() {
        let mut r = Reference::default();
        for s in 0..12 {
            let noise = (s as f64 * 0.37).sin() * 0.02;
            for step in ["a", "b", "c"] {
                r.add(&format!("s{s}"), step, 0.25f64.ln_1p() + noise);
            }
        }
        let shift = RunShift::of(&r, &CompareOptions::default()).unwrap();
        assert!((shift.ratio - 1.25).abs() < 0.02, "{shift:?}");
        assert_eq!(shift.verdict, Verdict::Regression);
        assert!(shift.warning().unwrap().contains("cannot tell them apart"));
        // Half the shift in log terms: ×1.25 widens 5 % to 11.8 %.
        assert!(
            (shift.min_effect - 1.25f64.sqrt() + 1.0).abs() < 0.01,
            "{shift:?}"
        );
    }
}
