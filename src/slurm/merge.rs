//! Merging the run reports of one SLURM array job into one summary and exit code.

use crate::derivatives::layout;
use crate::engine::report::RunReport;
use crate::engine::shard::Shard;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The merged outcome of an array job.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    /// `SLURM_ARRAY_JOB_ID`.
    pub job_id: String,
    /// Shards that had subjects to process.
    pub expected_shards: usize,
    /// Shard numbers (`I` of `I/N`) that wrote no report.
    pub missing_shards: Vec<usize>,
    /// The shard reports, by shard number.
    pub reports: Vec<PathBuf>,
    /// Subjects across shards.
    pub subjects: usize,
    /// Files that succeeded.
    pub ok: u64,
    /// Files that failed.
    pub failed: u64,
    /// Files skipped as already done.
    pub skipped: u64,
    /// Files cancelled.
    pub cancelled: u64,
    /// Every failure message, in shard order.
    pub failures: Vec<String>,
}

impl Merged {
    /// Whether every expected shard reported and nothing failed or was cancelled.
    pub fn succeeded(&self) -> bool {
        self.missing_shards.is_empty() && self.failed == 0 && self.cancelled == 0
    }

    /// A few lines for a person.
    pub fn human_summary(&self) -> String {
        let mut out = format!(
            "neuro-batch slurm job {}: {} shards reported of {}, {} subjects: {} ok, {} failed, {} skipped, {} cancelled\n",
            self.job_id,
            self.reports.len(),
            self.expected_shards,
            self.subjects,
            self.ok,
            self.failed,
            self.skipped,
            self.cancelled
        );
        if !self.missing_shards.is_empty() {
            out.push_str(&format!(
                "  MISSING reports from shards {:?}\n",
                self.missing_shards
            ));
        }
        for f in &self.failures {
            out.push_str(&format!("  FAILED {f}\n"));
        }
        out
    }
}

/// Read the run reports in `logs_dir` written by tasks of `job_id` and combine them;
/// `expected_shards` shards (0..expected) should have reported. A report that cannot be read
/// as a run report is left out (its shard then counts as missing).
pub fn merge(logs_dir: &Path, job_id: &str, expected_shards: usize) -> std::io::Result<Merged> {
    let mut found: Vec<(usize, PathBuf, RunReport)> = Vec::new();
    for entry in std::fs::read_dir(logs_dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !layout::is_run_report(&name) {
            continue;
        }
        let Ok(report) = serde_json::from_str::<RunReport>(&neuro_batch_fsutil::read_regular_text(
            &path,
            1 << 30,
        )?) else {
            tracing::warn!(
                "{}: not a run report; left out of the merge",
                path.display()
            );
            continue;
        };
        if report.slurm_job_id.as_deref() != Some(job_id) {
            continue;
        }
        let shard = report
            .shard
            .as_deref()
            .and_then(|s| Shard::parse(s).ok())
            .map_or(usize::MAX, |s| s.index);
        found.push((shard, path, report));
    }
    found.sort_by_key(|(shard, path, _)| (*shard, path.clone()));
    let mut merged = Merged {
        job_id: job_id.to_string(),
        expected_shards,
        missing_shards: (0..expected_shards)
            .filter(|i| !found.iter().any(|(s, _, _)| s == i))
            .collect(),
        reports: found.iter().map(|(_, p, _)| p.clone()).collect(),
        subjects: 0,
        ok: 0,
        failed: 0,
        skipped: 0,
        cancelled: 0,
        failures: Vec::new(),
    };
    for (_, _, r) in &found {
        merged.subjects += r.subjects.len();
        merged.ok += r.counts.ok as u64;
        merged.failed += r.counts.failed as u64;
        merged.skipped += r.counts.skipped as u64;
        merged.cancelled += r.counts.cancelled as u64;
        let errors = r.subjects.iter().flat_map(|s| &s.files);
        merged
            .failures
            .extend(errors.filter_map(|f| f.error.clone()));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::StageSettings;
    use serde_json::{Value, json};

    #[test]
    fn combines_the_reports_of_one_job_and_notices_missing_shards() {
        let dir = tempfile::tempdir().unwrap();
        let write =
            |name: &str, v: Value| std::fs::write(dir.path().join(name), v.to_string()).unwrap();
        let report = |job: &str, shard: &str, ok: u64, failed: u64, error: Option<&str>| {
            let file = json!({"input": "sub-09/anat/sub-09_T1w.nii.gz", "subject": "09",
                "session": null, "status": if error.is_some() { "failed" } else { "ok" },
                "duration_ms": 1.0, "steps": [], "outputs": [], "error": error});
            json!({"run_id": "r", "version": "0.1.0", "command": [], "started": "",
                   "finished": "", "duration_s": 1.0, "bids_dir": "/d", "output_dir": "/o",
                   "trace_file": null, "otlp_endpoint": null, "traceparent": null,
                   "threads": 1, "memory_budget_bytes": 1, "stages": [],
                   "settings": StageSettings::default(), "interrupted": false,
                   "slurm_job_id": job, "shard": shard,
                   "counts": {"ok": ok, "failed": failed, "skipped": 0, "cancelled": 0},
                   "warnings": [],
                   "subjects": [{"subject": "09", "sessions": [], "duration_ms": 1.0,
                                 "files": [file]}]})
        };
        write("neuro-batch-run-a.json", report("7", "0/3", 2, 0, None));
        write(
            "neuro-batch-run-b.json",
            report("7", "2/3", 1, 1, Some("sub-09: truncated")),
        );
        write("neuro-batch-run-c.json", report("8", "1/3", 5, 0, None));
        write("traces-x.jsonl", json!({}));
        let m = merge(dir.path(), "7", 3).unwrap();
        assert_eq!((m.ok, m.failed, m.subjects), (3, 1, 2));
        assert_eq!(m.missing_shards, [1]);
        assert_eq!(m.failures, ["sub-09: truncated"]);
        assert!(!m.succeeded());
        assert!(m.human_summary().contains("MISSING"));
    }
}
