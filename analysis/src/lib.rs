//! Trace analysis for neuro-batch.
//!
//! This crate will hold the Tempo client, the polars span table, attribute ranking and
//! regression checks (the `analyze` issue). It is part of the workspace from the start so the
//! layout is stable.

/// Where `neuro-batch analyze` looks for Tempo's HTTP API by default: the Tempo of the local
/// stack in `docker-compose.yml`.
pub const DEFAULT_TEMPO_URL: &str = "http://localhost:3200";
