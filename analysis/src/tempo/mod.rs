//! Grafana Tempo as a source. Search-first: one TraceQL search with `select(...)` per window
//! returns every span of each trace with its parent id, so trees need no fetch; only traces
//! whose spanset was cut, or that failed (for the exception message), are fetched by id. A
//! Tempo that refuses `select` gets the older path: search for the roots, then fetch every
//! trace.

mod client;
mod fetch;
mod search;
mod spansets;

pub use client::{Answer, Retry, TempoClient, TempoError};
pub use fetch::{FetchOutcome, fetch_trace, fetch_traces};
pub use search::{FoundTrace, MAX_LIMIT, SearchOutcome, Window, find_traces, quote, root_query};
pub use spansets::{
    SPANS_PER_SET, SearchedTrace, SpansetOutcome, decode_json, decode_protobuf, search_spansets,
    select_query, span_tags,
};
