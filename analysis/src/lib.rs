//! Trace analysis for neuro-batch: where a batch's time went, and why.
//!
//! Data flows one way: a source (the local trace store, or Grafana Tempo's HTTP API) gives
//! [`Span`]s → a [`SpanTable`] (polars; with self and critical-path times, inherited
//! attributes) → per-name figures, attribute ranking, slowest traces and failures
//! ([`report::build`]) → a renderer ([`render`]).

pub mod compare;
pub mod critical_path;
pub mod guards;
pub mod otlp_json;
pub mod rank;
pub mod render;
pub mod report;
pub mod shift;
pub mod source;
pub mod span;
pub mod stats;
pub mod store;
pub mod summary;
pub mod table;
mod table_file;
pub mod tempo;
pub mod units;
pub mod waiting;

pub use report::{Report, ReportOptions};
pub use source::{Source, SourceInfo};
pub use span::{AttrValue, Span, Status};
pub use table::SpanTable;

/// Where `neuro-batch analyze` looks for Tempo's HTTP API by default: the Tempo of the local
/// stack in `docker-compose.yml`.
pub const DEFAULT_TEMPO_URL: &str = "http://localhost:3200";
