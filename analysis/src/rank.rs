//! Attribute ranking: which attribute explains a span's duration, and how much.
//!
//! For each span name and each attribute:
//! - numeric attributes: Spearman's ρ with the duration (explained share ρ²), the least-squares
//!   slope in ms per unit, and percentiles per power-of-two bucket of the value;
//! - categorical attributes: a Kruskal-Wallis test across values (explained share ε² = H/(n−1),
//!   the rank analogue of ρ²), with per-value percentiles and a Mann-Whitney U test of each value
//!   against the rest (rank-biserial effect size).
//!
//! Failed spans are left out: how long a failure took says nothing about how long the work
//! takes. p-values are Benjamini-Hochberg corrected over every test made; findings are ordered
//! by explained share.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::{self, quantile};
use crate::table::{self, SpanTable, TableError, Values};
use crate::units::{fmt_ms, unit_of};

/// What to rank.
#[derive(Debug, Clone)]
pub struct RankOptions {
    /// Spans with fewer rows (having the attribute) are not tested.
    pub min_count: usize,
    /// Significance level for the corrected p-value.
    pub alpha: f64,
    /// Attribute keys left out: exact keys, or prefixes ending in `*` (`thread.*`).
    pub exclude: Vec<String>,
    /// Attributes that lead their group of same-cause attributes, in order of preference (e.g.
    /// `file.size_mb` over `array.voxels`, `bids.acq` over `array.shape`); without one, the
    /// group's strongest leads.
    pub prefer: Vec<String>,
    /// `(category, number)` pairs where the category is a bucketing of the number by
    /// construction (`file.size_bucket` of `file.size_mb`): folded together, the number always
    /// leads, however few spans there are to show it explains more.
    pub buckets: Vec<(String, String)>,
}

impl Default for RankOptions {
    fn default() -> Self {
        RankOptions {
            min_count: 10,
            alpha: 0.05,
            exclude: Vec::new(),
            prefer: Vec::new(),
            buckets: Vec::new(),
        }
    }
}

/// Duration figures of one group (a value bucket, or a category).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    /// `32-64` (bucket of a numeric attribute, unit in [`Finding::unit`]) or the category.
    pub label: String,
    /// Lower bound of a numeric bucket (for ordering and plots).
    pub lower: Option<f64>,
    /// Spans in the group.
    pub count: usize,
    /// Median duration, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Categories only: Mann-Whitney U p-value of this value against the rest (uncorrected).
    pub p_vs_rest: Option<f64>,
    /// Categories only: rank-biserial correlation vs the rest (positive: slower).
    pub effect_vs_rest: Option<f64>,
}

/// The kind of attribute a finding is about, and so the test made.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A number: Spearman's ρ, slope, buckets.
    Numeric,
    /// A category: Kruskal-Wallis across values.
    Categorical,
}

impl Kind {
    /// `numeric` or `categorical`, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Categorical => "categorical",
        }
    }
}

/// The points behind a numeric finding: the attribute in its unit against the duration, one pair
/// per successful span that has the attribute. The table's figures and the HTML scatter plot both
/// come from these.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    /// The attribute, scaled to its unit.
    pub x: Vec<f64>,
    /// Duration, ms.
    pub y: Vec<f64>,
}

impl Points {
    /// The least-squares line `(intercept, slope)`, when x varies.
    pub fn line(&self) -> Option<(f64, f64)> {
        let slope = stats::ols_slope(&self.x, &self.y)?;
        let n = self.x.len() as f64;
        let intercept = self.y.iter().sum::<f64>() / n - slope * self.x.iter().sum::<f64>() / n;
        Some((intercept, slope))
    }
}

/// The points of the numeric attribute `attribute` on spans named `span`; `None` when the
/// attribute is not numeric there.
pub fn points(
    table: &SpanTable,
    span: &str,
    attribute: &str,
) -> Result<Option<Points>, TableError> {
    let rows = table.of_name(span)?.without_errors()?;
    let Values::Numeric(v) = rows.values(attribute)? else {
        return Ok(None);
    };
    let (x, y) = pairs(&in_unit(v, attribute), &rows.floats(table::DURATION_MS)?);
    Ok(Some(Points { x, y }))
}

/// The values of the numeric attribute `key` in its unit.
fn in_unit(mut values: Vec<Option<f64>>, key: &str) -> Vec<Option<f64>> {
    let unit = unit_of(key);
    values
        .iter_mut()
        .flatten()
        .for_each(|x| *x = unit.apply(*x));
    values
}

/// How an attribute relates to a span's duration.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Span name.
    pub span: String,
    /// Attribute key.
    pub attribute: String,
    /// Which test was made.
    pub kind: Kind,
    /// Spans that have the attribute.
    pub count: usize,
    /// Share of the duration's rank variance explained (ρ² or ε²), 0..=1.
    pub explained: f64,
    /// Spearman's ρ (numeric only).
    pub rho: Option<f64>,
    /// Least-squares slope, ms per unit of the attribute (numeric only).
    pub slope_ms_per_unit: Option<f64>,
    /// Unit guessed from the key (`MB` for `*_mb`, `B` for `*_bytes`, ...), or empty.
    pub unit: String,
    /// Uncorrected p-value (Spearman t test or Kruskal-Wallis χ²).
    pub p: f64,
    /// Benjamini-Hochberg corrected p-value.
    pub q: f64,
    /// `q < alpha`.
    pub significant: bool,
    /// Per bucket (numeric, by increasing value) or per value (categorical, slowest first).
    pub groups: Vec<Group>,
    /// Attributes that move with this one on these spans (numbers with |Spearman ρ| ≥
    /// [`SAME_CAUSE_RHO`] between them, categories that are a function of it), whose own
    /// findings are folded into this one: the same cause.
    pub collinear: Vec<String>,
    /// What was explained: `duration` for a step (a span without children), `self` for a
    /// container span, whose own time (not covered by its children) is what it adds.
    pub measure: Measure,
    /// One line: `skull_strip: file.size_mb explains 81 % (ρ = 0.90, +38 ms/MB); ...`.
    pub headline: String,
}

/// What a finding explains.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// The span's duration (steps: spans without children).
    Duration,
    /// The span's self time (containers: spans with children).
    #[serde(rename = "self")]
    SelfTime,
}

/// A container span is ranked only when its own time is at least this share of its duration;
/// below that it only adds up its children, whose findings say why.
pub const CONTAINER_OWN_SHARE: f64 = 0.10;

/// Ranks every attribute of every span name. Steps (spans without children) are ranked on
/// their duration; a container span on its self time, and only when that is at least
/// [`CONTAINER_OWN_SHARE`] of its duration (else its children's findings are the cause). One
/// finding per cause: collinear numeric attributes fold into one, and so does a category that
/// is a function of a numeric attribute (`file.size_bucket` of `file.size_mb`). Significant
/// findings come first, steps before containers, then by explained share.
pub fn rank(table: &SpanTable, options: &RankOptions) -> Result<Vec<Finding>, TableError> {
    let keys: Vec<String> = table
        .attribute_keys()
        .into_iter()
        .filter(|k| !excluded(k, &options.exclude))
        .collect();
    let containers = table.container_names()?;
    let mut findings = Vec::new();
    for name in table.span_names()? {
        let rows = table.of_name(&name)?.without_errors()?;
        if rows.len() < options.min_count {
            continue;
        }
        let measure = if containers.contains(&name) {
            let own: f64 = rows.floats(table::SELF_MS)?.iter().flatten().sum();
            let all: f64 = rows.floats(table::DURATION_MS)?.iter().flatten().sum();
            if all <= 0.0 || own < CONTAINER_OWN_SHARE * all {
                continue;
            }
            Measure::SelfTime
        } else {
            Measure::Duration
        };
        let durations = rows.floats(match measure {
            Measure::Duration => table::DURATION_MS,
            Measure::SelfTime => table::SELF_MS,
        })?;
        let mut numeric: Vec<(Finding, Vec<Option<f64>>)> = Vec::new();
        let mut categorical: Vec<(Finding, Vec<Option<String>>)> = Vec::new();
        for key in &keys {
            match rows.values(key)? {
                Values::Numeric(v) => {
                    let v = in_unit(v, key);
                    let (x, y) = pairs(&v, &durations);
                    if x.len() >= options.min_count
                        && let Some(f) = numeric_finding(&name, key, unit_of(key).name, &x, &y)
                    {
                        numeric.push((f, v));
                    }
                }
                Values::Categorical(v) => {
                    let v = absent_as_value(v);
                    let (x, y) = pairs(&v, &durations);
                    if x.len() >= options.min_count
                        && let Some(f) = categorical_finding(&name, key, &x, &y)
                    {
                        categorical.push((f, v));
                    }
                }
            }
        }
        let mut these = fold_derived(
            fold_collinear(numeric, &options.prefer),
            fold_same_partition(categorical, &options.prefer),
            &durations,
            options,
        );
        for f in &mut these {
            f.measure = measure;
            if measure == Measure::SelfTime {
                f.headline =
                    f.headline
                        .replacen(&format!("{name}: "), &format!("{name} (own time): "), 1);
            }
        }
        findings.extend(these);
    }
    let q = stats::benjamini_hochberg(&findings.iter().map(|f| f.p).collect::<Vec<_>>());
    for (f, q) in findings.iter_mut().zip(q) {
        f.q = q;
        f.significant = q < options.alpha;
    }
    findings.sort_by(|a, b| {
        b.significant
            .cmp(&a.significant)
            .then((a.measure == Measure::SelfTime).cmp(&(b.measure == Measure::SelfTime)))
            .then(b.explained.total_cmp(&a.explained))
            .then_with(|| (&a.span, &a.attribute).cmp(&(&b.span, &b.attribute)))
    });
    // Each span's strongest finding before any span's second one: the list reads as one cause
    // per step first, then what else each step depends on.
    let mut seen = std::collections::HashSet::new();
    let primary: Vec<bool> = findings
        .iter()
        .map(|f| seen.insert((f.span.clone(), f.significant)))
        .collect();
    let mut ranked: Vec<(bool, Finding)> = primary.into_iter().zip(findings).collect();
    ranked.sort_by(|(pa, a), (pb, b)| b.significant.cmp(&a.significant).then(pb.cmp(pa)));
    Ok(ranked.into_iter().map(|(_, f)| f).collect())
}

/// The label a categorical attribute gets on spans that lack it, when others have it: an
/// image without an `acq` entity is its own acquisition, compared with the named ones.
pub const ABSENT: &str = "(none)";

/// `values` with missing entries as [`ABSENT`] when some are present.
fn absent_as_value(values: Vec<Option<String>>) -> Vec<Option<String>> {
    if values.iter().all(Option::is_some) || values.iter().all(Option::is_none) {
        return values;
    }
    values
        .into_iter()
        .map(|v| v.or_else(|| Some(ABSENT.to_owned())))
        .collect()
}

/// Within the categories it tells apart, a number leads only if it still explains the duration
/// (pooled within-category Spearman, |ρ| ≥ 0.5 and p below this); else the category is the
/// better description of the cause. Strict, so that chance order among a dozen spans does not
/// decide which attribute a report names.
const WITHIN_P: f64 = 0.001;

/// Folds each categorical finding whose values are a function of a kept numeric attribute's
/// (every category a run of consecutive values when sorted by it) together with that numeric
/// finding: the same cause, found twice. The number leads when the category is its bucketing
/// ([`RankOptions::buckets`]) or when it explains the duration within the categories too
/// (`file.size_bucket` of `file.size_mb`: bigger files are slower inside each bucket); the
/// category leads when the number only tells the categories apart (`bids.acq` of
/// `file.size_mb`, when a high-resolution protocol makes bigger files but file size inside each
/// protocol says nothing).
fn fold_derived(
    numeric: Vec<(Finding, Vec<Option<f64>>)>,
    mut categorical: Vec<(Finding, Vec<Option<String>>)>,
    durations: &[Option<f64>],
    options: &RankOptions,
) -> Vec<Finding> {
    let order = lead_order(&options.prefer);
    let mut out = Vec::new();
    for (mut n, nums) in numeric {
        let (derived, rest): (Vec<_>, Vec<_>) = categorical
            .into_iter()
            .partition(|(_, cats)| is_function_of(cats, &nums));
        categorical = rest;
        let Some(best) = derived
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| order(&a.0, &b.0))
            .map(|(i, _)| i)
        else {
            out.push(n);
            continue;
        };
        let is_bucket = options
            .buckets
            .iter()
            .any(|(c, n_key)| *c == derived[best].0.attribute && *n_key == n.attribute);
        if is_bucket || number_explains_within(&derived[best].1, &nums, durations) {
            for (f, _) in derived {
                n.collinear.push(f.attribute);
                n.collinear.extend(f.collinear);
            }
            out.push(n);
        } else {
            let mut derived: Vec<Finding> = derived.into_iter().map(|(f, _)| f).collect();
            let mut lead = derived.swap_remove(best);
            lead.collinear.push(n.attribute);
            lead.collinear.append(&mut n.collinear);
            for f in derived {
                lead.collinear.push(f.attribute);
                lead.collinear.extend(f.collinear);
            }
            out.push(lead);
        }
    }
    out.extend(categorical.into_iter().map(|(f, _)| f));
    out
}

/// The order in which findings of one cause are considered to lead it: the preferred
/// attributes first (in `prefer`'s order), then the stronger, then by name.
fn lead_order(prefer: &[String]) -> impl Fn(&Finding, &Finding) -> std::cmp::Ordering + '_ {
    let rank = move |k: &str| prefer.iter().position(|p| p == k).unwrap_or(usize::MAX);
    move |a, b| {
        rank(&a.attribute)
            .cmp(&rank(&b.attribute))
            .then(b.explained.total_cmp(&a.explained))
            .then_with(|| a.attribute.cmp(&b.attribute))
    }
}

/// Folds categorical findings that split the spans alike (`bids.acq` and `image.voxel_mm` when
/// each protocol has its own voxel size) into one, led by the preferred attribute, else the
/// strongest.
fn fold_same_partition(
    mut categorical: Vec<(Finding, Vec<Option<String>>)>,
    prefer: &[String],
) -> Vec<(Finding, Vec<Option<String>>)> {
    let order = lead_order(prefer);
    categorical.sort_by(|a, b| order(&a.0, &b.0));
    let mut kept: Vec<(Finding, Vec<Option<String>>)> = Vec::new();
    for (f, v) in categorical {
        match kept.iter_mut().find(|(_, kv)| same_partition(kv, &v)) {
            Some((k, _)) => k.collinear.push(f.attribute),
            None => kept.push((f, v)),
        }
    }
    kept
}

/// Whether two categorical attributes group the spans the same way: on the spans that have
/// both, each value of one goes with exactly one value of the other, both ways.
fn same_partition(a: &[Option<String>], b: &[Option<String>]) -> bool {
    let (mut ab, mut ba) = (BTreeMap::new(), BTreeMap::new());
    let mut both = 0;
    for (x, y) in a.iter().zip(b) {
        let (Some(x), Some(y)) = (x, y) else { continue };
        both += 1;
        if *ab.entry(x).or_insert(y) != y || *ba.entry(y).or_insert(x) != x {
            return false;
        }
    }
    both >= 3 && ab.len() > 1
}

/// Whether `nums` explains the duration within the categories of `cats` (see [`WITHIN_P`]).
fn number_explains_within(
    cats: &[Option<String>],
    nums: &[Option<f64>],
    durations: &[Option<f64>],
) -> bool {
    let mut groups: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for ((c, n), d) in cats.iter().zip(nums).zip(durations) {
        if let (Some(c), Some(n), Some(d)) = (c, n, d) {
            let g = groups.entry(c.as_str()).or_default();
            g.0.push(*n);
            g.1.push(*d);
        }
    }
    let groups: Vec<(Vec<f64>, Vec<f64>)> = groups.into_values().collect();
    stats::spearman_within(&groups).is_some_and(|c| c.rho.abs() >= 0.5 && c.p < WITHIN_P)
}

/// Whether each category of `cats` covers one interval of `nums`: sorted by the number, the
/// category changes at most (categories − 1) times.
fn is_function_of(cats: &[Option<String>], nums: &[Option<f64>]) -> bool {
    let mut pairs: Vec<(f64, &str)> = cats
        .iter()
        .zip(nums)
        .filter_map(|(c, n)| Some(((*n)?, c.as_deref()?)))
        .collect();
    if pairs.len() < 3 {
        return false;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    let mut distinct: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let changes = pairs.windows(2).filter(|w| w[0].1 != w[1].1).count();
    distinct.len() > 1 && changes < distinct.len()
}

fn excluded(key: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == p,
    })
}

fn pairs<T: Clone>(values: &[Option<T>], durations: &[Option<f64>]) -> (Vec<T>, Vec<f64>) {
    values
        .iter()
        .zip(durations)
        .filter_map(|(v, d)| Some((v.clone()?, (*d)?)))
        .unzip()
}

fn numeric_finding(span: &str, key: &str, unit: &str, x: &[f64], y: &[f64]) -> Option<Finding> {
    let corr = stats::spearman(x, y)?;
    let slope = stats::ols_slope(x, y);
    let unit = unit.to_owned();
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (v, d) in x.iter().zip(y) {
        let b = if *v > 0.0 {
            v.log2().floor() as i64
        } else {
            i64::MIN
        };
        buckets.entry(b).or_default().push(*d);
    }
    let groups: Vec<Group> = buckets
        .into_iter()
        .map(|(b, mut d)| {
            d.sort_by(f64::total_cmp);
            let (label, lower) = if b == i64::MIN {
                ("≤0".to_owned(), None)
            } else {
                let lo = 2f64.powi(b as i32);
                (format!("{}-{}", trim(lo), trim(lo * 2.0)), Some(lo))
            };
            Group {
                label,
                lower,
                count: d.len(),
                p50_ms: quantile(&d, 0.5),
                p95_ms: quantile(&d, 0.95),
                p_vs_rest: None,
                effect_vs_rest: None,
            }
        })
        .collect();
    let explained = corr.rho * corr.rho;
    let mut headline = format!(
        "{span}: {key} explains {:.0} % (ρ = {:.2}",
        explained * 100.0,
        corr.rho
    );
    if let Some(s) = slope {
        let per = if unit.is_empty() { "unit" } else { unit.trim() };
        let sign = if s >= 0.0 { "+" } else { "" };
        headline += &format!(", {sign}{} ms/{per}", sig3(s));
    }
    headline += ")";
    if let Some(contrast) = bucket_contrast(&groups, &unit) {
        headline += &format!("; {contrast}");
    }
    Some(Finding {
        span: span.to_owned(),
        attribute: key.to_owned(),
        kind: Kind::Numeric,
        count: x.len(),
        explained,
        rho: Some(corr.rho),
        slope_ms_per_unit: slope,
        unit,
        p: corr.p,
        q: corr.p,
        significant: false,
        groups,
        collinear: Vec::new(),
        measure: Measure::Duration,
        headline,
    })
}

/// `v` with 3 significant digits (`38.2`, `0.00123`).
fn sig3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

fn trim(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        sig3(v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// `p95 412 ms in 32-64MB vs 96 ms in 4-8MB`: the highest and lowest buckets with at least 3
/// spans (or the two largest when none has).
fn bucket_contrast(groups: &[Group], unit: &str) -> Option<String> {
    let enough: Vec<&Group> = groups.iter().filter(|g| g.count >= 3).collect();
    let (lo, hi) = (enough.first()?, enough.last()?);
    (lo.label != hi.label).then(|| {
        format!(
            "p95 {} in {}{unit} vs {} in {}{unit}",
            fmt_ms(hi.p95_ms),
            hi.label,
            fmt_ms(lo.p95_ms),
            lo.label
        )
    })
}

fn categorical_finding(span: &str, key: &str, x: &[String], y: &[f64]) -> Option<Finding> {
    let mut by_value: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (v, d) in x.iter().zip(y) {
        by_value.entry(v).or_default().push(*d);
    }
    // Identifiers (a value per span or nearly) explain nothing that generalises.
    if by_value.len() < 2 || by_value.len() * 2 > x.len() {
        return None;
    }
    let samples: Vec<Vec<f64>> = by_value.values().cloned().collect();
    let kw = stats::kruskal_wallis(&samples)?;
    let mut groups: Vec<Group> = by_value
        .iter()
        .map(|(label, d)| {
            let rest: Vec<f64> = x
                .iter()
                .zip(y)
                .filter(|(v, _)| v.as_str() != *label)
                .map(|(_, d)| *d)
                .collect();
            let mw = stats::mann_whitney(d, &rest);
            let mut sorted = d.clone();
            sorted.sort_by(f64::total_cmp);
            Group {
                label: (*label).to_owned(),
                lower: None,
                count: d.len(),
                p50_ms: quantile(&sorted, 0.5),
                p95_ms: quantile(&sorted, 0.95),
                p_vs_rest: mw.map(|m| m.p),
                effect_vs_rest: mw.map(|m| m.rank_biserial),
            }
        })
        .collect();
    groups.sort_by(|a, b| b.p50_ms.total_cmp(&a.p50_ms));
    let (slow, fast) = (groups.first()?, groups.last()?);
    let mut headline = format!(
        "{span}: {key} explains {:.0} % (Kruskal-Wallis, {} values); p50 {} for {} vs {} for {}",
        kw.epsilon_squared * 100.0,
        groups.len(),
        fmt_ms(slow.p50_ms),
        slow.label,
        fmt_ms(fast.p50_ms),
        fast.label
    );
    if fast.p50_ms > 0.0 {
        headline += &format!(" ({:.1}× slower)", slow.p50_ms / fast.p50_ms);
    }
    Some(Finding {
        span: span.to_owned(),
        attribute: key.to_owned(),
        kind: Kind::Categorical,
        count: x.len(),
        explained: kw.epsilon_squared,
        rho: None,
        slope_ms_per_unit: None,
        unit: String::new(),
        p: kw.p,
        q: kw.p,
        significant: false,
        groups,
        collinear: Vec::new(),
        measure: Measure::Duration,
        headline,
    })
}

/// Two numeric attributes whose values have |Spearman ρ| at least this on the same spans are one
/// cause, found twice (`array.voxels` and `file.size_mb`; the bias field's `control_points`,
/// which grow with the image): the weaker is folded into the stronger (or preferred) one.
pub const SAME_CAUSE_RHO: f64 = 0.8;

/// Folds numeric findings whose attributes move together on these spans (|ρ| ≥ [`SAME_CAUSE_RHO`] between
/// the attributes) into one, led by the preferred attribute, else the strongest.
fn fold_collinear(
    mut numeric: Vec<(Finding, Vec<Option<f64>>)>,
    prefer: &[String],
) -> Vec<(Finding, Vec<Option<f64>>)> {
    let order = lead_order(prefer);
    numeric.sort_by(|a, b| order(&a.0, &b.0));
    let mut kept: Vec<(Finding, Vec<Option<f64>>)> = Vec::new();
    for (f, v) in numeric {
        let twin = kept.iter_mut().find(|(_, kv)| {
            let (a, b): (Vec<f64>, Vec<f64>) = kv
                .iter()
                .zip(&v)
                .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
                .unzip();
            stats::spearman(&a, &b).is_some_and(|c| c.rho.abs() >= SAME_CAUSE_RHO)
                || (a.len() >= 2 && a == b)
        });
        match twin {
            Some((k, _)) => k.collinear.push(f.attribute),
            None => kept.push((f, v)),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_patterns() {
        let ex = vec!["thread.*".to_owned(), "file.path".to_owned()];
        assert!(excluded("thread.cpu_ms", &ex));
        assert!(excluded("file.path", &ex));
        assert!(!excluded("file.path_len", &ex));
    }

    #[test]
    fn numeric_finding_reads_like_the_headline() {
        let x: Vec<f64> = (1..=40).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| 10.0 + 38.0 * v).collect();
        let f = numeric_finding("skull_strip", "file.size_mb", "MB", &x, &y).unwrap();
        assert!((f.rho.unwrap() - 1.0).abs() < 1e-12);
        assert!((f.slope_ms_per_unit.unwrap() - 38.0).abs() < 1e-9);
        assert!(
            f.headline.starts_with(
                "skull_strip: file.size_mb explains 100 % (ρ = 1.00, +38.0 ms/MB); p95 "
            ),
            "{}",
            f.headline
        );
        assert_eq!(f.groups.first().unwrap().label, "1-2");
        assert_eq!(f.groups.last().unwrap().label, "32-64");
    }

    #[test]
    fn identifiers_are_not_categories() {
        let x: Vec<String> = (0..20).map(|i| format!("sub-{i}")).collect();
        let y: Vec<f64> = (0..20).map(f64::from).collect();
        assert!(categorical_finding("s", "bids.subject", &x, &y).is_none());
    }
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    #[test]
    fn collinear_attributes_fold_into_the_preferred_one() {
        let size: Vec<f64> = (1..=30).map(f64::from).collect();
        let voxels: Vec<f64> = size.iter().map(|s| s * 1000.0 + 3.0).collect();
        let other: Vec<f64> = size.iter().map(|s| (s * 7.0) % 11.0).collect();
        let y: Vec<f64> = size.iter().map(|s| s * 2.0).collect();
        let finding = |key: &str, x: &[f64]| {
            (
                numeric_finding("s", key, "", x, &y).unwrap(),
                x.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
            )
        };
        let folded = fold_collinear(
            vec![
                finding("array.voxels", &voxels),
                finding("other", &other),
                finding("file.size_mb", &size),
            ],
            &["file.size_mb".to_owned()],
        );
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].0.attribute, "file.size_mb");
        assert_eq!(folded[0].0.collinear, vec!["array.voxels"]);
        assert_eq!(folded[1].0.attribute, "other");
    }

    #[test]
    fn a_bucket_of_a_number_is_the_same_cause() {
        let size: Vec<Option<f64>> = (1..=30).map(|s| Some(f64::from(s))).collect();
        let bucket: Vec<Option<String>> = size
            .iter()
            .map(|s| Some(format!("{}MB", (s.unwrap() as i64).ilog2())))
            .collect();
        let scattered: Vec<Option<String>> = (0..30).map(|i| Some(format!("{}", i % 3))).collect();
        assert!(is_function_of(&bucket, &size));
        assert!(!is_function_of(&scattered, &size));
        let y: Vec<f64> = size.iter().map(|s| s.unwrap() * 2.0).collect();
        let x: Vec<f64> = size.iter().flatten().copied().collect();
        let numeric = vec![(
            numeric_finding("s", "file.size_mb", "MB", &x, &y).unwrap(),
            size,
        )];
        let labels: Vec<String> = bucket.iter().flatten().cloned().collect();
        let categorical = vec![(
            categorical_finding("s", "file.size_bucket", &labels, &y).unwrap(),
            bucket,
        )];
        let durations: Vec<Option<f64>> = y.iter().map(|d| Some(*d)).collect();
        let folded = fold_derived(numeric, categorical, &durations, &RankOptions::default());
        assert_eq!(folded.len(), 1);
        assert_eq!(folded[0].attribute, "file.size_mb");
        assert_eq!(folded[0].collinear, vec!["file.size_bucket"]);
    }

    #[test]
    fn a_known_bucketing_never_leads_its_number() {
        // Eight spans in four buckets of two: too few to show that size explains the duration
        // inside the buckets, but the bucket is the size's by construction.
        let size: Vec<Option<f64>> = [1.1, 1.6, 2.2, 3.1, 4.5, 6.0, 8.8, 12.0]
            .iter()
            .map(|v| Some(*v))
            .collect();
        let bucket: Vec<Option<String>> = size
            .iter()
            .map(|s| Some(format!("{}MB", (s.unwrap() as i64).ilog2())))
            .collect();
        let y: Vec<f64> = [10.0, 9.0, 21.0, 20.0, 44.0, 41.0, 80.0, 83.0].to_vec();
        let x: Vec<f64> = size.iter().flatten().copied().collect();
        let labels: Vec<String> = bucket.iter().flatten().cloned().collect();
        let durations: Vec<Option<f64>> = y.iter().map(|d| Some(*d)).collect();
        let fold = |options: &RankOptions| {
            fold_derived(
                vec![(
                    numeric_finding("s", "file.size_mb", "MB", &x, &y).unwrap(),
                    size.clone(),
                )],
                vec![(
                    categorical_finding("s", "file.size_bucket", &labels, &y).unwrap(),
                    bucket.clone(),
                )],
                &durations,
                options,
            )
        };
        assert_eq!(
            fold(&RankOptions::default())[0].attribute,
            "file.size_bucket"
        );
        let options = RankOptions {
            buckets: vec![("file.size_bucket".into(), "file.size_mb".into())],
            ..RankOptions::default()
        };
        assert_eq!(fold(&options)[0].attribute, "file.size_mb");
    }

    #[test]
    fn categories_that_split_the_spans_alike_are_one_cause() {
        let acq: Vec<Option<String>> = (0..12)
            .map(|i| Some(["(none)", "highres"][i % 2].to_owned()))
            .collect();
        let voxel: Vec<Option<String>> = (0..12)
            .map(|i| Some(["1x1x1", "0.8x0.8x0.8"][i % 2].to_owned()))
            .collect();
        let scanner: Vec<Option<String>> = (0..12)
            .map(|i| Some(["Prisma", "SIGNA"][i / 2 % 2].to_owned()))
            .collect();
        assert!(same_partition(&acq, &voxel));
        assert!(!same_partition(&acq, &scanner));
        let y: Vec<f64> = (0..12).map(|i| (i % 2 * 100 + i) as f64).collect();
        let finding = |key: &str, v: &[Option<String>]| {
            let labels: Vec<String> = v.iter().flatten().cloned().collect();
            (
                categorical_finding("s", key, &labels, &y).unwrap(),
                v.to_vec(),
            )
        };
        let folded = fold_same_partition(
            vec![
                finding("image.voxel_mm", &voxel),
                finding("scanner.model", &scanner),
                finding("bids.acq", &acq),
            ],
            &["bids.acq".to_owned()],
        );
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].0.attribute, "bids.acq");
        assert_eq!(folded[0].0.collinear, vec!["image.voxel_mm"]);
        assert_eq!(folded[1].0.attribute, "scanner.model");
    }

    #[test]
    fn a_protocol_that_makes_bigger_files_is_named_for_what_it_is() {
        // Two acquisitions: high-res files are ~2x bigger and 2x slower, but inside each
        // protocol file size (compression noise) says nothing about the duration.
        let n = 24;
        let acq: Vec<Option<String>> = (0..n)
            .map(|i| (i % 2 == 1).then(|| "highres".to_owned()))
            .collect();
        let acq = absent_as_value(acq);
        let size: Vec<Option<f64>> = (0..n)
            .map(|i| Some(if i % 2 == 1 { 20.0 } else { 10.0 } + ((i * 7) % 5) as f64 * 0.1))
            .collect();
        let y: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 1 { 200.0 } else { 100.0 } + ((i * 3) % 7) as f64)
            .collect();
        let x: Vec<f64> = size.iter().flatten().copied().collect();
        let labels: Vec<String> = acq.iter().flatten().cloned().collect();
        let durations: Vec<Option<f64>> = y.iter().map(|d| Some(*d)).collect();
        let folded = fold_derived(
            vec![(
                numeric_finding("s", "file.size_mb", "MB", &x, &y).unwrap(),
                size,
            )],
            vec![(
                categorical_finding("s", "bids.acq", &labels, &y).unwrap(),
                acq,
            )],
            &durations,
            &RankOptions::default(),
        );
        assert_eq!(folded.len(), 1);
        assert_eq!(folded[0].attribute, "bids.acq");
        assert_eq!(folded[0].collinear, vec!["file.size_mb"]);
        assert!(
            folded[0]
                .headline
                .ends_with("for highres vs 104 ms for (none) (2.0× slower)"),
            "{}",
            folded[0].headline
        );
    }
}
