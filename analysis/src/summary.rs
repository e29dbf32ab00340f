//! Per-span-name figures, the slowest traces and the failures.

use std::collections::HashSet;

use serde::Serialize;

use crate::stats::quantile;
use crate::table::{self, SpanTable, TableError};

/// Duration figures of one span name.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NameStats {
    /// Span name.
    pub name: String,
    /// Number of spans.
    pub count: usize,
    /// Spans with status error.
    pub errors: usize,
    /// Exact percentiles of the duration, ms (linear interpolation).
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Longest, ms.
    pub max_ms: f64,
    /// Sum of durations, ms.
    pub total_ms: f64,
    /// `total_ms` over the summed duration of the root spans (0..=1 for spans that run one at
    /// a time within a trace); `null` when no trace tree is known.
    pub share_of_traces: Option<f64>,
    /// The summed self time (duration not covered by children), ms; `null` without trees.
    pub self_ms: Option<f64>,
    /// Share of the traces' critical paths spent in this span itself (0..=1, sums to 1 over
    /// all names); `null` without trees.
    pub critical_path_share: Option<f64>,
}

/// Figures per span name, ordered by total time, largest first.
pub fn by_name(table: &SpanTable) -> Result<Vec<NameStats>, TableError> {
    let root_total: f64 = table
        .roots()?
        .floats(table::DURATION_MS)?
        .iter()
        .flatten()
        .sum();
    let critical_total: f64 = table.floats(table::CRITICAL_MS)?.iter().flatten().sum();
    let mut out = Vec::new();
    for name in table.span_names()? {
        let rows = table.of_name(&name)?;
        let mut d: Vec<f64> = rows
            .floats(table::DURATION_MS)?
            .into_iter()
            .flatten()
            .collect();
        d.sort_by(f64::total_cmp);
        let errors = rows
            .strings(table::STATUS)?
            .iter()
            .filter(|s| s.as_deref() == Some("error"))
            .count();
        let total: f64 = d.iter().sum();
        let sum_of = |col| -> Result<Option<f64>, TableError> {
            let v: Vec<f64> = rows.floats(col)?.into_iter().flatten().collect();
            Ok((!v.is_empty()).then(|| v.iter().sum()))
        };
        let self_ms = sum_of(table::SELF_MS)?;
        let critical = sum_of(table::CRITICAL_MS)?;
        out.push(NameStats {
            count: d.len(),
            errors,
            p50_ms: quantile(&d, 0.5),
            p90_ms: quantile(&d, 0.9),
            p95_ms: quantile(&d, 0.95),
            p99_ms: quantile(&d, 0.99),
            max_ms: d.last().copied().unwrap_or(f64::NAN),
            total_ms: total,
            share_of_traces: (root_total > 0.0).then(|| total / root_total),
            self_ms,
            critical_path_share: critical
                .filter(|_| critical_total > 0.0)
                .map(|c| c / critical_total),
            name,
        });
    }
    Ok(out)
}

/// One trace (one subject, for neuro-batch), for the slowest-traces list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceSummary {
    /// 32-hex trace id.
    pub trace_id: String,
    /// Root span name.
    pub root: String,
    /// Value of the label attribute on the root (e.g. `bids.subject`), if any.
    pub label: Option<String>,
    /// Root duration, ms.
    pub duration_ms: f64,
    /// Root status.
    pub status: String,
    /// The span name with the most critical-path time in this trace, and that time in ms.
    pub critical_span: Option<(String, f64)>,
    /// A link to the trace in Grafana, when a Grafana URL was given.
    pub link: Option<String>,
}

/// How one trace failed: its deepest failing span and the recorded exception or status message.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailedTrace {
    /// 32-hex trace id.
    pub trace_id: String,
    /// Value of the label attribute (inherited from the root when the tree is known).
    pub label: Option<String>,
    /// Span name of the deepest failing span of the trace.
    pub span: String,
    /// Message recorded on that span.
    pub message: Option<String>,
}

/// The `limit` longest root spans, longest first.
pub fn slowest_traces(
    table: &SpanTable,
    label_attribute: &str,
    grafana: Option<&GrafanaLinks>,
    limit: usize,
) -> Result<Vec<TraceSummary>, TableError> {
    let roots = table.roots()?;
    let starts = roots.floats(table::START_UNIX_NANO)?;
    let ids = roots.strings(table::TRACE_ID)?;
    let names = roots.strings(table::NAME)?;
    let durations = roots.floats(table::DURATION_MS)?;
    let statuses = roots.strings(table::STATUS)?;
    let labels = label_column(&roots, label_attribute)?;
    let mut order: Vec<usize> = (0..roots.len()).collect();
    order.sort_by(|&a, &b| {
        durations[b]
            .unwrap_or(0.0)
            .total_cmp(&durations[a].unwrap_or(0.0))
    });
    order.truncate(limit);

    let all_ids = table.strings(table::TRACE_ID)?;
    let all_names = table.strings(table::NAME)?;
    let all_critical = table.floats(table::CRITICAL_MS)?;
    Ok(order
        .into_iter()
        .map(|i| {
            let id = ids[i].clone().unwrap_or_default();
            let mut per_name: Vec<(String, f64)> = Vec::new();
            for ((t, n), c) in all_ids.iter().zip(&all_names).zip(&all_critical) {
                if t.as_deref() == Some(id.as_str())
                    && let (Some(n), Some(c)) = (n, c)
                {
                    match per_name.iter_mut().find(|(k, _)| k == n) {
                        Some(e) => e.1 += c,
                        None => per_name.push((n.clone(), *c)),
                    }
                }
            }
            TraceSummary {
                link: grafana.map(|g| {
                    let start_ms = starts[i].unwrap_or(0.0) / 1e6;
                    g.link(&id, start_ms, start_ms + durations[i].unwrap_or(0.0))
                }),
                critical_span: per_name.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)),
                root: names[i].clone().unwrap_or_default(),
                label: labels[i].clone(),
                duration_ms: durations[i].unwrap_or(f64::NAN),
                status: statuses[i].clone().unwrap_or_default(),
                trace_id: id,
            }
        })
        .collect())
}

/// The deepest failing span of each trace with a failure (the one with no failing child:
/// where the exception was raised), in trace order.
pub fn failures(table: &SpanTable, label_attribute: &str) -> Result<Vec<FailedTrace>, TableError> {
    let ids = table.strings(table::TRACE_ID)?;
    let span_ids = table.strings(table::SPAN_ID)?;
    let parents = table.strings(table::PARENT_ID)?;
    let names = table.strings(table::NAME)?;
    let statuses = table.strings(table::STATUS)?;
    let messages = table.strings(table::ERROR)?;
    let labels = label_column(table, label_attribute)?;
    let failed: Vec<usize> = (0..table.len())
        .filter(|&i| statuses[i].as_deref() == Some("error"))
        .collect();
    let failing_parents: HashSet<(&str, &str)> = failed
        .iter()
        .filter_map(|&j| Some((ids[j].as_deref()?, parents[j].as_deref()?)))
        .collect();
    let has_failing_child = |i: usize| {
        ids[i]
            .as_deref()
            .zip(span_ids[i].as_deref())
            .is_some_and(|key| failing_parents.contains(&key))
    };
    let mut out: Vec<FailedTrace> = Vec::new();
    for &i in &failed {
        let id = ids[i].clone().unwrap_or_default();
        if has_failing_child(i) {
            continue;
        }
        out.push(FailedTrace {
            trace_id: id,
            label: labels[i].clone(),
            span: names[i].clone().unwrap_or_default(),
            message: messages[i].clone(),
        });
    }
    out.sort_by(|a, b| (&a.label, &a.trace_id).cmp(&(&b.label, &b.trace_id)));
    Ok(out)
}

fn label_column(table: &SpanTable, key: &str) -> Result<Vec<Option<String>>, TableError> {
    if table.attribute_keys().iter().any(|k| k == key) {
        table.strings(key)
    } else {
        Ok(vec![None; table.len()])
    }
}

/// Where trace links point: a Grafana and its Tempo datasource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrafanaLinks {
    /// Base URL, e.g. `http://localhost:3000`.
    pub url: String,
    /// The uid of the Tempo datasource (`tempo` in the bundled stack).
    pub datasource: String,
}

/// Minutes of margin around a trace in the time range of its link.
const LINK_MARGIN_MS: f64 = 60_000.0;

impl GrafanaLinks {
    /// An Explore link that opens `trace_id` in the Tempo datasource, over the trace's own time
    /// (start and end in Unix ms) with a minute either side.
    pub fn link(&self, trace_id: &str, start_ms: f64, end_ms: f64) -> String {
        let (from, to) = (
            (start_ms - LINK_MARGIN_MS).max(0.0) as i64,
            (end_ms + LINK_MARGIN_MS) as i64,
        );
        let uid = self.datasource.replace(['"', '\\'], "");
        let state = format!(
            r#"{{"datasource":"{uid}","queries":[{{"refId":"A","datasource":{{"type":"tempo","uid":"{uid}"}},"queryType":"traceql","query":"{trace_id}"}}],"range":{{"from":"{from}","to":"{to}"}}}}"#
        );
        let encoded =
            percent_encoding::utf8_percent_encode(&state, percent_encoding::NON_ALPHANUMERIC);
        format!(
            "{}/explore?schemaVersion=1&panes=%7B%22a%22:{encoded}%7D",
            self.url.trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::GrafanaLinks;

    #[test]
    fn grafana_links_open_the_trace_in_explore() {
        let links = GrafanaLinks {
            url: "http://localhost:3000/".into(),
            datasource: "my-tempo".into(),
        };
        let link = links.link("00ab", 1_796_190_850_000.0, 1_796_190_860_000.0);
        assert!(link.contains("%22uid%22%3A%22my%2Dtempo%22"), "{link}");
        assert!(
            link.contains("%22from%22%3A%221796190790000%22%2C%22to%22%3A%221796190920000%22"),
            "{link}"
        );
        assert!(
            link.starts_with("http://localhost:3000/explore?schemaVersion=1&panes=%7B%22a%22:%7B")
        );
        assert!(link.contains("%22query%22%3A%2200ab%22"), "{link}");
        assert!(!link.contains(' ') && !link.contains('"'));
    }
}
