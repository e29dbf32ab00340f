//! Merging the run reports of one SLURM array job into one summary and exit code.

use serde::Serialize;
use serde_json::Value;
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
/// `expected_shards` shards (0..expected) should have reported.
pub fn merge(logs_dir: &Path, job_id: &str, expected_shards: usize) -> std::io::Result<Merged> {
    let mut found: Vec<(usize, PathBuf, Value)> = Vec::new();
    for entry in std::fs::read_dir(logs_dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !(name.starts_with("neuro-batch-run-") && name.ends_with(".json")) {
            continue;
        }
        let Ok(report) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path)?) else {
            continue;
        };
        if report["slurm_job_id"].as_str() != Some(job_id) {
            continue;
        }
        let shard = report["shard"]
            .as_str()
            .and_then(|s| s.split('/').next())
            .and_then(|i| i.parse().ok())
            .unwrap_or(usize::MAX);
        found.push((shard, path, report));
    }
    found.sort_by_key(|(shard, path, _)| (*shard, path.clone()));
    let count = |r: &Value, key: &str| r["counts"][key].as_u64().unwrap_or(0);
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
        merged.subjects += r["subjects"].as_array().map_or(0, Vec::len);
        merged.ok += count(r, "ok");
        merged.failed += count(r, "failed");
        merged.skipped += count(r, "skipped");
        merged.cancelled += count(r, "cancelled");
        let errors = r["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["files"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["error"].as_str().map(str::to_string));
        merged.failures.extend(errors);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn combines_the_reports_of_one_job_and_notices_missing_shards() {
        let dir = tempfile::tempdir().unwrap();
        let write =
            |name: &str, v: Value| std::fs::write(dir.path().join(name), v.to_string()).unwrap();
        let report = |job: &str, shard: &str, ok: u64, failed: u64, error: Option<&str>| {
            json!({"slurm_job_id": job, "shard": shard,
                   "counts": {"ok": ok, "failed": failed, "skipped": 0, "cancelled": 0},
                   "subjects": [{"files": [{"error": error}]}]})
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
