//! Grafana Tempo as a source: TraceQL search to find the traces of a run, then whole traces by
//! id (the critical path and attribute inheritance need the tree).

mod client;
mod fetch;
mod search;

pub use client::{Retry, TempoClient, TempoError};
pub use fetch::{FetchOutcome, fetch_trace, fetch_traces};
pub use search::{FoundTrace, MAX_LIMIT, SearchOutcome, Window, find_traces, quote, root_query};
