//! A finished run's metrics, pushed to a Prometheus Pushgateway — the Prometheus idiom for
//! batch jobs, which end before any scrape would find them. One PUT per run replaces the group
//! `job="neuro-batch", batch_id=…, shard=…`, in the text exposition format, with the same
//! metric names the OTLP instruments get through a collector into Prometheus
//! (`neuro_batch_files_total`, `neuro_batch_step_duration_milliseconds`), so one dashboard
//! serves both paths. The figures come from the run report, so they agree with it.

use super::names;
use crate::engine::report::{FileStatus, RunReport};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The Pushgateway's `job` label.
pub const JOB: &str = "neuro-batch";

/// Bucket bounds (ms) of the step-duration histogram: the OpenTelemetry SDK's defaults, which
/// the OTLP path's histogram has too.
const BUCKETS_MS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// A push that did not land.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The URL is not an http(s) URL.
    #[error("--metrics-push {url}: {reason}")]
    Url {
        /// As given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed or was refused.
    #[error("metrics push to {url}: {reason}")]
    Request {
        /// The group's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Where to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushgateway {
    base: url::Url,
}

impl Pushgateway {
    /// The Pushgateway at `url` (e.g. `http://pushgateway:9091`).
    pub fn parse(url: &str) -> Result<Pushgateway, PushError> {
        let fail = |reason: String| PushError::Url {
            url: url.to_owned(),
            reason,
        };
        let base = url::Url::parse(url).map_err(|e| fail(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(fail("expected http://HOST:PORT".into()));
        }
        Ok(Pushgateway { base })
    }

    /// The group's URL: `/metrics/job/neuro-batch/batch_id@base64/…/shard@base64/…` (label
    /// values base64url-encoded, so any run id or `1/3` shard is safe in a path).
    pub fn group_url(&self, report: &RunReport) -> String {
        let encode = |v: &str| base64::engine::general_purpose::URL_SAFE.encode(v);
        format!(
            "{}/metrics/job/{JOB}/batch_id@base64/{}/shard@base64/{}",
            self.base.as_str().trim_end_matches('/'),
            encode(batch_id(report)),
            encode(shard(report)),
        )
    }

    /// Pushes `report`'s metrics, replacing the group's earlier ones; gives up after `timeout`.
    pub fn push(&self, report: &RunReport, timeout: Duration) -> Result<(), PushError> {
        let url = self.group_url(report);
        let fail = |reason: String| PushError::Request {
            url: url.clone(),
            reason,
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let response = client
            .put(&url)
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(exposition(report))
            .send()
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().unwrap_or_default();
            return Err(fail(format!("{status}: {}", body.trim())));
        }
        Ok(())
    }
}

/// The batch a run belongs to: the SLURM array job, else the run itself.
fn batch_id(report: &RunReport) -> &str {
    report.slurm_job_id.as_deref().unwrap_or(&report.run_id)
}

fn shard(report: &RunReport) -> &str {
    report.shard.as_deref().unwrap_or("all")
}

/// `report`'s metrics in the Prometheus text exposition format (version 0.0.4).
pub fn exposition(report: &RunReport) -> String {
    let mut out = String::new();
    let mut steps: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for file in report.subjects.iter().flat_map(|s| &s.files) {
        for step in &file.steps {
            steps.entry(&step.name).or_default().push(step.duration_ms);
        }
    }
    let (files, outcome_label) = (names::PROM_FILES, names::METRIC_LABEL_OUTCOME);
    let _ = writeln!(
        out,
        "# HELP {files} Input files by outcome.\n# TYPE {files} counter"
    );
    for status in FileStatus::ALL {
        let (outcome, n) = (status.name(), report.counts.get(status));
        let _ = writeln!(out, "{files}{{{outcome_label}=\"{outcome}\"}} {n}");
    }
    let (hist, step_label) = (names::PROM_STEP_DURATION, names::METRIC_LABEL_STEP);
    let _ = writeln!(
        out,
        "# HELP {hist} Duration of each step.\n# TYPE {hist} histogram"
    );
    for (step, durations) in &steps {
        let step = format!("{step_label}=\"{}\"", escape(step));
        for bound in BUCKETS_MS {
            let n = durations.iter().filter(|&&d| d <= bound).count();
            let _ = writeln!(out, "{hist}_bucket{{{step},le=\"{bound}\"}} {n}");
        }
        let (count, sum) = (durations.len(), durations.iter().sum::<f64>());
        let _ = writeln!(
            out,
            "{hist}_bucket{{{step},le=\"+Inf\"}} {count}\n\
             {hist}_sum{{{step}}} {sum}\n\
             {hist}_count{{{step}}} {count}"
        );
    }
    let finished = chrono::DateTime::parse_from_rfc3339(&report.finished)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .unwrap_or(f64::NAN);
    for (name, help, value) in [
        (
            "neuro_batch_run_duration_seconds",
            "Wall time of the run.",
            report.duration_s,
        ),
        (
            "neuro_batch_run_finished_timestamp_seconds",
            "When the run ended (Unix time).",
            finished,
        ),
        (
            "neuro_batch_run_interrupted",
            "1 if the run was interrupted.",
            f64::from(u8::from(report.interrupted)),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP neuro_batch_run_info The run's id and version.\n\
         # TYPE neuro_batch_run_info gauge\n\
         neuro_batch_run_info{{run_id=\"{}\",version=\"{}\"}} 1",
        escape(&report.run_id),
        escape(&report.version)
    );
    out
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_taken() {
        assert!(Pushgateway::parse("http://127.0.0.1:9091").is_ok());
        assert!(Pushgateway::parse("pushgateway:9091").is_err());
        assert!(Pushgateway::parse("ftp://host/").is_err());
        assert!(Pushgateway::parse("not a url").is_err());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
