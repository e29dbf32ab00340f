//! Trace analysis for neuro-batch.
//!
//! This crate will hold the Tempo client, the polars span table, attribute ranking and
//! regression checks. It is part of the workspace from the start so the layout is stable.
