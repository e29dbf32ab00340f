//! OTLP metrics (exported only when an OTLP endpoint is configured; otherwise no-ops).

use super::names;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

/// The run's instruments.
#[derive(Clone)]
pub struct Metrics {
    files: Counter<u64>,
    step_duration: Histogram<f64>,
}

impl Metrics {
    /// Instruments on the global meter provider.
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("neuro-batch");
        Self {
            files: meter
                .u64_counter(names::METRIC_FILES)
                .with_description("Input files by outcome (ok, failed, skipped, cancelled)")
                .build(),
            step_duration: meter
                .f64_histogram(names::METRIC_STEP_DURATION)
                .with_unit(names::METRIC_STEP_DURATION_UNIT)
                .with_description("Duration of each processing step (load, stages, write)")
                .build(),
        }
    }

    /// Count a finished file.
    pub fn file_done(&self, outcome: &'static str) {
        self.files
            .add(1, &[KeyValue::new(names::METRIC_LABEL_OUTCOME, outcome)]);
    }

    /// Record how long a step took.
    pub fn step(&self, name: &'static str, ms: f64) {
        self.step_duration
            .record(ms, &[KeyValue::new(names::METRIC_LABEL_STEP, name)]);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
