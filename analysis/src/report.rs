//! The analysis report: everything `neuro-batch analyze` prints, as one serialisable value.
//! Its JSON form is a stable interface (`schema` names its version).

use serde::Serialize;

use crate::rank::{self, Finding, Measure, RankOptions};
use crate::source::SourceInfo;
use crate::summary::{self, FailedTrace, GrafanaLinks, NameStats, TraceSummary};
use crate::table::{SpanTable, TableError};
use crate::units::fmt_ms;
use crate::waiting::{self, Waiting};

/// Version tag of the report's JSON shape.
pub const SCHEMA: &str = "neuro-batch.analyze/v2";

/// How to build the report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Ranking settings.
    pub rank: RankOptions,
    /// Root attribute that names a trace (e.g. `bids.subject`).
    pub label_attribute: String,
    /// Grafana base URL for trace links.
    pub grafana: Option<GrafanaLinks>,
    /// How many slowest traces to list.
    pub slowest: usize,
}

/// The report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Where the spans came from.
    pub source: SourceInfo,
    /// One sentence to act on: the slowest step, its share of the critical path, and what
    /// explains it (or that nothing recorded does), and whether it is mostly waiting.
    pub headline: String,
    /// Per span name, by total time.
    pub spans: Vec<NameStats>,
    /// Attribute findings, significant first, by explained share.
    pub findings: Vec<Finding>,
    /// Slowest traces (subjects).
    pub slowest: Vec<TraceSummary>,
    /// Failing spans, one per failed trace.
    pub failures: Vec<FailedTrace>,
    /// Per step, its wall time against its CPU time; mostly-waiting steps first.
    pub waiting: Vec<Waiting>,
}

/// Analyses a span table.
pub fn build(
    table: &SpanTable,
    mut source: SourceInfo,
    options: &ReportOptions,
) -> Result<Report, TableError> {
    source.spans = table.len();
    source.traces = distinct_traces(table)?;
    let spans = summary::by_name(table)?;
    let findings = rank::rank(table, &options.rank)?;
    let waiting = waiting::waiting(table, &options.label_attribute)?;
    let containers = table.container_names()?;
    Ok(Report {
        schema: SCHEMA,
        headline: headline(&spans, &findings, &waiting, &containers),
        spans,
        findings,
        waiting,
        slowest: summary::slowest_traces(
            table,
            &options.label_attribute,
            options.grafana.as_ref(),
            options.slowest,
        )?,
        failures: summary::failures(table, &options.label_attribute)?,
        source,
    })
}

/// The report's first sentence, about the step with the largest share of the critical path.
fn headline(
    spans: &[NameStats],
    findings: &[Finding],
    waiting: &[Waiting],
    containers: &std::collections::HashSet<String>,
) -> String {
    let share = |s: &&NameStats| s.critical_path_share.unwrap_or(0.0);
    let steps = spans.iter().filter(|s| !containers.contains(&s.name));
    let Some(step) = steps.max_by(|a, b| share(a).total_cmp(&share(b))) else {
        return "no spans".into();
    };
    let mut line = match step.critical_path_share {
        Some(s) => format!(
            "{} is the slowest step: {:.0} % of the critical path",
            step.name,
            s * 100.0
        ),
        None => format!(
            "{} is the slowest step ({} in all)",
            step.name,
            fmt_ms(step.total_ms)
        ),
    };
    let cause = findings
        .iter()
        .find(|f| f.span == step.name && f.significant && f.measure == Measure::Duration);
    match cause {
        Some(f) => {
            let why = f
                .headline
                .strip_prefix(&format!("{}: ", step.name))
                .unwrap_or(&f.headline);
            line += &format!("; {why}");
        }
        None => line += "; no recorded attribute explains its variation",
    }
    if let Some(w) = waiting
        .iter()
        .find(|w| w.span == step.name && w.mostly_waiting)
    {
        line += &format!(
            "; {:.0} % of its time is waiting, not compute",
            w.waiting_share * 100.0
        );
    }
    line + "."
}

fn distinct_traces(table: &SpanTable) -> Result<usize, TableError> {
    let mut ids: Vec<String> = table
        .strings(crate::table::TRACE_ID)?
        .into_iter()
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.len())
}
