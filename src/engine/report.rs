//! What a run did, per input: the JSON run report and the human summary.

use super::plan::SubjectJob;
use crate::derivatives::OutputPaths;
use crate::stages::{Fact, StageSettings};
use crate::telemetry::Delivery;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

/// How one input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Processed and written.
    Ok,
    /// Failed; see `error`. No output of it remains.
    Failed,
    /// Outputs were already complete (resume).
    Skipped,
    /// Abandoned or never started because of Ctrl-C.
    Cancelled,
}

impl FileStatus {
    /// Every status, in report order.
    pub const ALL: [FileStatus; 4] = [
        FileStatus::Ok,
        FileStatus::Failed,
        FileStatus::Skipped,
        FileStatus::Cancelled,
    ];

    /// Its name in the report, spans (`outcome`) and metrics.
    pub fn name(self) -> &'static str {
        match self {
            FileStatus::Ok => "ok",
            FileStatus::Failed => "failed",
            FileStatus::Skipped => "skipped",
            FileStatus::Cancelled => "cancelled",
        }
    }
}

/// One step of processing a file (load, a stage, write) and what it reported.
///
/// A run keeps one per step of every input until it writes its report, so names and keys
/// borrow the program's own `'static` strings (owned only when read back from a report):
/// 10 000 subjects would otherwise hold some 400 000 small strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// `load_file`, a stage name, or `write_output`.
    pub name: Cow<'static, str>,
    /// Wall-clock milliseconds.
    pub duration_ms: f64,
    /// Facts the step reported, in the order it reported them (a JSON object).
    #[serde(with = "ordered_facts")]
    pub facts: Vec<(Cow<'static, str>, Fact)>,
}

/// The record of one input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to BIDS_DIR.
    pub input: PathBuf,
    /// Subject label.
    pub subject: String,
    /// Session label, if any.
    pub session: Option<String>,
    /// Outcome.
    pub status: FileStatus,
    /// Wall-clock milliseconds for the whole file.
    pub duration_ms: f64,
    /// Steps in the order they ran.
    pub steps: Vec<StepRecord>,
    /// Outputs written (absolute paths).
    pub outputs: Outputs,
    /// The error, naming the file and the reason, when `status` is `failed`.
    pub error: Option<String>,
}

/// The outputs a [`FileRecord`] lists, a JSON array of absolute paths.
///
/// A run's records share the paths its plan already holds rather than copying them: 10 000
/// records would otherwise keep some 40 000 more paths until the report is written.
#[derive(Debug, Clone, Default)]
pub enum Outputs {
    /// Nothing written.
    #[default]
    None,
    /// Everything the plan named, written by this run.
    Planned(Arc<OutputPaths>),
    /// As read back from a report.
    Listed(Vec<PathBuf>),
}

impl Serialize for Outputs {
    /// The paths, images first.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Outputs::None => serializer.collect_seq(std::iter::empty::<PathBuf>()),
            Outputs::Planned(paths) => serializer.collect_seq(paths.all()),
            Outputs::Listed(paths) => serializer.collect_seq(paths),
        }
    }
}

impl<'de> Deserialize<'de> for Outputs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<PathBuf>::deserialize(deserializer).map(Outputs::Listed)
    }
}

/// The record of one subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectRecord {
    /// Subject label.
    pub subject: String,
    /// Sessions processed.
    pub sessions: Vec<String>,
    /// Wall-clock milliseconds for the subject.
    pub duration_ms: f64,
    /// One record per input.
    pub files: Vec<FileRecord>,
}

/// Counts of file outcomes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    /// Succeeded.
    pub ok: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped as already complete.
    pub skipped: usize,
    /// Cancelled.
    pub cancelled: usize,
}

impl Counts {
    /// Tally `subjects`.
    pub fn of(subjects: &[SubjectRecord]) -> Self {
        let mut c = Counts::default();
        for f in subjects.iter().flat_map(|s| &s.files) {
            match f.status {
                FileStatus::Ok => c.ok += 1,
                FileStatus::Failed => c.failed += 1,
                FileStatus::Skipped => c.skipped += 1,
                FileStatus::Cancelled => c.cancelled += 1,
            }
        }
        c
    }

    /// How many inputs ended with `status`.
    pub fn get(&self, status: FileStatus) -> usize {
        match status {
            FileStatus::Ok => self.ok,
            FileStatus::Failed => self.failed,
            FileStatus::Skipped => self.skipped,
            FileStatus::Cancelled => self.cancelled,
        }
    }
}

/// `OUTPUT_DIR/logs/neuro-batch-run-<id>.json`; its JSON form is read back by the SLURM merge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Run id (also the trace attribute `batch.id`).
    pub run_id: String,
    /// neuro-batch version.
    pub version: String,
    /// The command line.
    pub command: Vec<String>,
    /// Start time, RFC 3339.
    pub started: String,
    /// End time, RFC 3339.
    pub finished: String,
    /// Wall-clock seconds.
    pub duration_s: f64,
    /// Input dataset root.
    pub bids_dir: PathBuf,
    /// Output root.
    pub output_dir: PathBuf,
    /// The JSON-lines trace file, if one was written.
    pub trace_file: Option<PathBuf>,
    /// The OTLP traces URL, if traces were exported.
    pub otlp_endpoint: Option<String>,
    /// The batch context every subject trace links to (W3C traceparent), if any.
    pub traceparent: Option<String>,
    /// Worker threads.
    pub threads: usize,
    /// Memory budget in bytes.
    pub memory_budget_bytes: u64,
    /// Stages run, in order.
    pub stages: Vec<String>,
    /// Stage parameters.
    pub settings: StageSettings,
    /// Whether Ctrl-C interrupted the run.
    pub interrupted: bool,
    /// The shard this run processed (`I/N`), if sharded.
    pub shard: Option<String>,
    /// `SLURM_ARRAY_JOB_ID` when run as a SLURM array task.
    pub slurm_job_id: Option<String>,
    /// File outcome counts.
    pub counts: Counts,
    /// Warnings from discovery.
    pub warnings: Vec<String>,
    /// What reached the trace exporters when the report was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<Delivery>,
    /// Folders of the dataset that could not be read (each a failure of the run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// Per subject, in label order.
    pub subjects: Vec<SubjectRecord>,
}

impl SubjectRecord {
    /// The record of a subject that did not finish: every file gets `status` and `error`.
    pub fn unfinished(job: &SubjectJob, status: FileStatus, error: Option<String>) -> Self {
        Self {
            subject: job.label.clone(),
            sessions: job.sessions.clone(),
            duration_ms: 0.0,
            files: job
                .files
                .iter()
                .map(|f| FileRecord {
                    input: f.input.relative.clone(),
                    subject: f.input.subject.clone(),
                    session: f.input.session.clone(),
                    status,
                    duration_ms: 0.0,
                    steps: Vec::new(),
                    outputs: Outputs::None,
                    error: error.clone(),
                })
                .collect(),
        }
    }
}

/// How a run ended, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every input succeeded or was already done.
    Success,
    /// Some inputs failed; the others finished.
    SomeFailed,
    /// Ctrl-C or SIGTERM stopped it.
    Interrupted,
}

impl RunReport {
    /// How the run ended.
    pub fn outcome(&self) -> Outcome {
        if self.interrupted {
            Outcome::Interrupted
        } else if self.counts.failed > 0 || !self.unreadable.is_empty() {
            Outcome::SomeFailed
        } else {
            Outcome::Success
        }
    }

    /// A few lines for a person: counts, time, where things are, and every failure.
    pub fn human_summary(&self, report_path: Option<&std::path::Path>) -> String {
        let c = self.counts;
        let mut out = format!(
            "neuro-batch: {} subjects, {} inputs: {} ok, {} failed, {} skipped (already done), {} cancelled in {:.1} s\n",
            self.subjects.len(),
            c.ok + c.failed + c.skipped + c.cancelled,
            c.ok,
            c.failed,
            c.skipped,
            c.cancelled,
            self.duration_s
        );
        for e in &self.unreadable {
            out.push_str(&format!("  FAILED {e}\n"));
        }
        for f in self.subjects.iter().flat_map(|s| &s.files) {
            if let Some(e) = &f.error {
                out.push_str(&format!("  FAILED {e}\n"));
            }
        }
        out.push_str(&format!(
            "outputs: {}\nreport:  {}\n",
            self.output_dir.display(),
            report_path.map_or_else(|| "NOT WRITTEN".into(), |p| p.display().to_string())
        ));
        out
    }
}

/// Facts as a JSON object whose keys keep the step's order.
mod ordered_facts {
    use crate::stages::Fact;
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use std::borrow::Cow;

    pub fn serialize<S: Serializer>(
        facts: &[(Cow<'static, str>, Fact)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(facts.len()))?;
        for (k, v) in facts {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(Cow<'static, str>, Fact)>, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Vec<(Cow<'static, str>, Fact)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of facts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut facts = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Fact>()? {
                    facts.push((Cow::Owned(key), value));
                }
                Ok(facts)
            }
        }
        d.deserialize_map(Ordered)
    }
}
