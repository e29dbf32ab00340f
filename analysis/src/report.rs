//! The analysis report: everything `neuro-batch analyze` prints, as one serialisable value.
//! Its JSON form is a stable interface (`schema` names its version).

use serde::Serialize;

use crate::rank::{self, Finding, RankOptions};
use crate::source::SourceInfo;
use crate::summary::{self, FailedTrace, NameStats, TraceSummary};
use crate::table::{SpanTable, TableError};

/// Version tag of the report's JSON shape.
pub const SCHEMA: &str = "neuro-batch.analyze/v1";

/// How to build the report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Ranking settings.
    pub rank: RankOptions,
    /// Root attribute that names a trace (e.g. `bids.subject`).
    pub label_attribute: String,
    /// Grafana base URL for trace links.
    pub grafana: Option<String>,
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
    /// Per span name, by total time.
    pub spans: Vec<NameStats>,
    /// Attribute findings, significant first, by explained share.
    pub findings: Vec<Finding>,
    /// Slowest traces (subjects).
    pub slowest: Vec<TraceSummary>,
    /// Failing spans, one per failed trace.
    pub failures: Vec<FailedTrace>,
}

/// Analyses a span table.
pub fn build(
    table: &SpanTable,
    mut source: SourceInfo,
    options: &ReportOptions,
) -> Result<Report, TableError> {
    source.spans = table.len();
    source.traces = distinct_traces(table)?;
    Ok(Report {
        schema: SCHEMA,
        spans: summary::by_name(table)?,
        findings: rank::rank(table, &options.rank)?,
        slowest: summary::slowest_traces(
            table,
            &options.label_attribute,
            options.grafana.as_deref(),
            options.slowest,
        )?,
        failures: summary::failures(table, &options.label_attribute)?,
        source,
    })
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
