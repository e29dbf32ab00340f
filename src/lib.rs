//! neuro-batch: preprocess whole BIDS datasets in parallel.
//!
//! Data flows one way: [`bids`] discovers inputs, [`engine`] schedules subjects on a rayon
//! pool under a memory budget, [`stages`] process each [`volume`], and [`derivatives`]
//! writes BIDS-Derivatives outputs atomically.

pub mod bids;
pub mod cli;
pub mod commands;
pub mod derivatives;
pub mod engine;
pub mod error;
pub mod malloc;
pub mod qc;
pub mod slurm;
pub mod stages;
pub mod synth;
pub mod telemetry;
pub mod volume;
