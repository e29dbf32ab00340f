//! One whole run, in order: discover the inputs, keep this shard's subjects, plan them
//! (resume decisions, memory estimates), schedule them on a worker pool, and write the run
//! report. `run` and every SLURM array task come through here.

use super::RunConfig;
use super::cancel::CancelToken;
use super::plan::{SubjectJob, plan};
use super::process::Processor;
use super::report::{Counts, FileStatus, RunReport, SubjectRecord};
use super::scheduler::{Scheduled, schedule};
use crate::bids::{self, Dataset, DatasetError, Discovery};
use crate::derivatives::{layout, placement, prepare_output_root};
use crate::telemetry::Telemetry;
use crate::telemetry::cpu::PoolCpu;
use crate::telemetry::metrics::Metrics;
use opentelemetry::trace::SpanContext;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a run could not happen (per-file failures are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// BIDS_DIR is missing or not a BIDS dataset.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// BIDS_DIR is itself a derivative dataset.
    #[error(
        "{}: this is a derivative dataset (DatasetType \"derivative\" in dataset_description.json), \
         not raw data; give the raw BIDS dataset as BIDS_DIR",
        root.display()
    )]
    DerivativeInput {
        /// The dataset root.
        root: PathBuf,
    },
    /// OUTPUT_DIR is the raw dataset or inside it.
    #[error(transparent)]
    OutputInsideInput(#[from] placement::InsideRawDataset),
    /// The filters (and shard) selected nothing.
    #[error(
        "no input in {} matches the filters (suffix {suffixes}, participants {participants:?}, \
         sessions {sessions:?}): {hint}",
        root.display()
    )]
    NoInputs {
        /// The dataset root.
        root: PathBuf,
        /// `--suffix`, comma-separated.
        suffixes: String,
        /// `--participant-label`.
        participants: Vec<String>,
        /// `--session-label`.
        sessions: Vec<String>,
        /// What exists instead, and what to do.
        hint: String,
    },
    /// OUTPUT_DIR or a file in it cannot be written.
    #[error("cannot {what} {}: {source}", path.display())]
    Output {
        /// What was being written.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The worker threads could not be started.
    #[error("cannot start the worker pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
}

impl BatchError {
    /// Nothing in the dataset at `root` matches `filters`.
    pub fn no_inputs(root: &std::path::Path, filters: &crate::bids::Filters) -> Self {
        let suffixes = if filters.suffixes.is_empty() {
            "T1w".to_owned()
        } else {
            filters.suffixes.join(",")
        };
        BatchError::NoInputs {
            root: root.to_path_buf(),
            suffixes,
            participants: filters.participants.clone(),
            sessions: filters.sessions.clone(),
            hint: bids::nothing_found(root, filters),
        }
    }
}

/// The inputs of a run, discovered, sharded and planned; nothing written yet.
#[derive(Debug)]
pub struct Batch {
    /// The input dataset.
    pub dataset: Dataset,
    /// What discovery had to say (warnings, unreadable folders); its subjects live on in
    /// `jobs` (not kept twice: at 10 000 subjects that is tens of MB).
    pub discovery: Discovery,
    /// One job per subject, in label order.
    pub jobs: Vec<SubjectJob>,
}

impl Batch {
    /// Input files planned.
    pub fn input_count(&self) -> usize {
        self.jobs.iter().map(|j| j.files.len()).sum()
    }
}

/// What planning found.
#[derive(Debug)]
pub enum Planned {
    /// Work to do (possibly all resumed).
    Batch(Batch),
    /// The dataset has subjects, but none in this shard.
    EmptyShard {
        /// Subjects in the whole dataset.
        subjects: usize,
    },
}

/// Open BIDS_DIR and discover the inputs the filters select, logging discovery's warnings.
/// Refuses a derivative dataset as input, and an OUTPUT_DIR that would write into BIDS_DIR.
pub fn discover(config: &RunConfig) -> Result<(Dataset, Discovery), BatchError> {
    let dataset = bids::open_dataset(&config.bids_dir)?;
    if dataset.is_derivative {
        return Err(BatchError::DerivativeInput { root: dataset.root });
    }
    placement::check(&dataset.root, &config.output_dir)?;
    let discovery = bids::discover(&dataset, &config.filters)?;
    for warning in &discovery.warnings {
        tracing::warn!("{warning}");
    }
    Ok((dataset, discovery))
}

/// Discover, keep this shard's subjects and plan them. Reads headers and existing outputs;
/// writes nothing.
pub fn prepare(config: &RunConfig) -> Result<Planned, BatchError> {
    let (dataset, mut discovery) = discover(config)?;
    if let Some(shard) = config.shard {
        let before = discovery.subjects.len();
        discovery.subjects = std::mem::take(&mut discovery.subjects)
            .into_iter()
            .enumerate()
            .filter_map(|(position, subject)| shard.owns(position).then_some(subject))
            .collect();
        if discovery.subjects.is_empty() && before > 0 {
            return Ok(Planned::EmptyShard { subjects: before });
        }
    }
    if discovery.input_count() == 0 {
        return Err(BatchError::no_inputs(&dataset.root, &config.filters));
    }
    let jobs = plan(&discovery, &config.output_dir, config);
    discovery.subjects = Vec::new();
    Ok(Planned::Batch(Batch {
        dataset,
        discovery,
        jobs,
    }))
}

/// What the run is part of and where its telemetry goes: recorded in the report and on
/// every trace.
pub struct RunContext<'a> {
    /// The run id (`batch.id`, and the report's and trace file's names).
    pub run_id: &'a str,
    /// The command line, for the report.
    pub command: Vec<String>,
    /// The batch this run belongs to: every subject trace links to it.
    pub batch_link: Option<&'a SpanContext>,
    /// The local trace file, if one is written.
    pub trace_file: Option<PathBuf>,
    /// The OTLP traces URL, if traces are exported.
    pub otlp_endpoint: Option<String>,
    /// `SLURM_ARRAY_JOB_ID` when run as an array task.
    pub slurm_job_id: Option<String>,
    /// Ticks once per finished file.
    pub progress: &'a indicatif::ProgressBar,
    /// OTLP instruments (no-ops without an endpoint).
    pub metrics: &'a Metrics,
    /// The run's telemetry: flushed before the report, which records what reached it.
    pub telemetry: Option<&'a Telemetry>,
}

/// A finished run: its report, written to `report_path` unless `report_error` says why not.
#[derive(Debug)]
pub struct Finished {
    /// The report.
    pub report: RunReport,
    /// `OUTPUT_DIR/logs/neuro-batch-run-<id>.json`.
    pub report_path: PathBuf,
    /// Why the report could not be written (disk full...): the work is done, the record of it
    /// is only what the caller prints.
    pub report_error: Option<BatchError>,
}

/// Run `batch`: create OUTPUT_DIR's fixed files, process every subject on a pool of
/// `config.thread_count()` workers under the memory budget, and write the run report.
pub fn run(
    config: &RunConfig,
    batch: Batch,
    ctx: &RunContext,
    cancel: &CancelToken,
) -> Result<Finished, BatchError> {
    let out_root = &config.output_dir;
    prepare_output_root(out_root, &batch.dataset).map_err(|source| BatchError::Output {
        what: "create the output directory",
        path: out_root.clone(),
        source,
    })?;
    remove_stale_temp_files(out_root, &batch.jobs);
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let threads = config.thread_count();
    let budget = config.memory_budget_bytes();
    let cpu = Arc::new(PoolCpu::new(threads));
    let (on_start, on_exit) = (Arc::clone(&cpu), Arc::clone(&cpu));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("neuro-batch-{i}"))
        .start_handler(move |i| on_start.register(i))
        .exit_handler(move |i| on_exit.unregister(i))
        .build()?;
    let settings_digest = config.work_digest();
    let processor = Processor {
        config,
        cpu: &cpu,
        settings_digest: &settings_digest,
        cancel,
        progress: ctx.progress,
        batch_id: ctx.run_id,
        batch_link: ctx.batch_link,
        metrics: ctx.metrics,
        memory_budget: budget,
    };
    let results = schedule(
        &pool,
        &batch.jobs,
        SubjectJob::estimated_bytes,
        budget,
        threads,
        cancel.flag(),
        |job| processor.subject(job),
    );
    ctx.progress.finish_and_clear();
    let subjects = records(results, &batch.jobs);
    let traces = ctx.telemetry.map(Telemetry::flush);
    let figures = Figures {
        started: started.to_rfc3339(),
        duration_s: clock.elapsed().as_secs_f64(),
        threads,
        memory_budget_bytes: budget,
        interrupted: cancel.is_cancelled(),
    };
    let report = report_of(config, &batch, ctx, figures, subjects, traces);
    let report_path = layout::run_report(out_root, ctx.run_id);
    let report_error = neuro_batch_fsutil::write_json_atomic(&report_path, &report)
        .err()
        .map(|source| BatchError::Output {
            what: "write the run report",
            path: report_path.clone(),
            source,
        });
    Ok(Finished {
        report,
        report_path,
        report_error,
    })
}

/// What only the run itself knows, for its report.
struct Figures {
    started: String,
    duration_s: f64,
    threads: usize,
    memory_budget_bytes: u64,
    interrupted: bool,
}

/// The report of `batch`'s run.
fn report_of(
    config: &RunConfig,
    batch: &Batch,
    ctx: &RunContext,
    figures: Figures,
    subjects: Vec<SubjectRecord>,
    traces: Option<crate::telemetry::Delivery>,
) -> RunReport {
    let mut warnings = batch.discovery.warnings.clone();
    warnings.extend(traces.and_then(|t| t.trace_file_shortfall()));
    RunReport {
        run_id: ctx.run_id.to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: ctx.command.clone(),
        started: figures.started,
        finished: chrono::Utc::now().to_rfc3339(),
        duration_s: figures.duration_s,
        bids_dir: batch.dataset.root.clone(),
        output_dir: config.output_dir.clone(),
        trace_file: ctx.trace_file.clone(),
        otlp_endpoint: ctx.otlp_endpoint.clone(),
        traceparent: ctx.batch_link.map(traceparent),
        threads: figures.threads,
        memory_budget_bytes: figures.memory_budget_bytes,
        stages: config.stages.iter().map(|s| s.name().to_string()).collect(),
        settings: config.settings.clone(),
        interrupted: figures.interrupted,
        shard: config.shard.map(|s| s.to_string()),
        slurm_job_id: ctx.slurm_job_id.clone(),
        counts: Counts::of(&subjects),
        warnings,
        traces,
        unreadable: batch.discovery.unreadable.clone(),
        subjects,
    }
}

/// How old a temporary file in a folder every shard writes to must be before it counts as left
/// behind (its writer needs milliseconds).
const STALE_AFTER: Duration = Duration::from_secs(600);

/// Removes the temporary files an earlier, killed run left: every one in this batch's subject
/// folders (shards own their subjects, so no other run writes there), and those older than
/// [`STALE_AFTER`] in OUTPUT_DIR and its logs folder.
fn remove_stale_temp_files(out_root: &Path, jobs: &[SubjectJob]) {
    let mut dirs: Vec<(&Path, Duration)> = jobs
        .iter()
        .flat_map(|j| &j.files)
        .map(|f| (f.outputs.dir.as_path(), Duration::ZERO))
        .collect();
    dirs.sort();
    dirs.dedup();
    let logs = out_root.join(layout::LOGS_DIR);
    dirs.push((out_root, STALE_AFTER));
    dirs.push((&logs, STALE_AFTER));
    for (dir, min_age) in dirs {
        match neuro_batch_fsutil::remove_stale_temp_files(dir, min_age) {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} temporary files left in {}", dir.display()),
            Err(e) => tracing::warn!("cannot clean up temporary files in {}: {e}", dir.display()),
        }
    }
}

/// One record per subject: what it did, or why it did not finish.
fn records(results: Vec<Scheduled<SubjectRecord>>, jobs: &[SubjectJob]) -> Vec<SubjectRecord> {
    results
        .into_iter()
        .zip(jobs)
        .map(|(result, job)| match result {
            Scheduled::Done(record) => record,
            Scheduled::Panicked(message) => SubjectRecord::unfinished(
                job,
                FileStatus::Failed,
                Some(format!(
                    "internal error while processing sub-{}: {message}",
                    job.label
                )),
            ),
            Scheduled::NotStarted => SubjectRecord::unfinished(job, FileStatus::Cancelled, None),
        })
        .collect()
}

/// The W3C `traceparent` of `context`.
fn traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}
