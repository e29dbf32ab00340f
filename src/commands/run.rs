//! `neuro-batch run`: discover → plan → schedule → process → report.

use super::{Globals, absolute, discover_inputs, new_run_id, telemetry_for};
use crate::bids::{Dataset, Discovery};
use crate::cli::{Format, RunArgs};
use crate::derivatives::{LOGS_DIR, prepare_output_root, write_json_atomic};
use crate::engine::RunConfig;
use crate::engine::plan::{SubjectJob, plan};
use crate::engine::process::{Context, process_subject};
use crate::engine::report::{Counts, FileRecord, FileStatus, RunReport, SubjectRecord};
use crate::engine::scheduler::{Scheduled, schedule};
use crate::engine::shard::Shard;
use crate::error::{ExitCode, Failure};
use crate::stages::{Stage, StageSettings};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::{self, Telemetry};
use anyhow::{Context as _, anyhow};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Set by Ctrl-C / SIGTERM; a second signal exits at once.
static CANCEL: AtomicBool = AtomicBool::new(false);

pub(super) fn run(args: RunArgs, globals: Globals) -> Result<ExitCode, Failure> {
    let run_id = new_run_id("");
    let out_root = absolute(&args.output_dir);
    let trace_file = out_root
        .join(LOGS_DIR)
        .join(format!("traces-{run_id}.jsonl"));
    let telemetry = telemetry_for(&args, globals, Some(trace_file));
    let result = run_batch(&args, &run_id, &out_root, &telemetry);
    if let Some(warning) = telemetry.shutdown() {
        eprintln!("neuro-batch: warning: {warning}");
    }
    result
}

fn run_batch(
    args: &RunArgs,
    run_id: &str,
    out_root: &Path,
    telemetry: &Telemetry,
) -> Result<ExitCode, Failure> {
    let config = run_config(args)?;
    let batch_link = match (
        telemetry::batch_context(args.traceparent.as_deref()),
        &args.traceparent,
    ) {
        (Ok(link), _) => link,
        (Err(e), Some(_)) => {
            return Err(Failure::new(ExitCode::Usage, anyhow!("--traceparent: {e}")));
        }
        (Err(e), None) => {
            tracing::warn!("TRACEPARENT ignored: {e}");
            None
        }
    };
    let (dataset, mut discovery) = discover_inputs(args)?;
    let shard = match args.shard {
        Some(shard) => Some(shard),
        None => Shard::from_env(args.shard_count.map(|n| n as usize), |k| {
            std::env::var(k).ok()
        })
        .map_err(|e| Failure::new(ExitCode::Usage, anyhow!("{e}")))?,
    };
    if let Some(shard) = shard {
        let before = discovery.subjects.len();
        discovery.subjects = std::mem::take(&mut discovery.subjects)
            .into_iter()
            .enumerate()
            .filter_map(|(position, subject)| shard.owns(position).then_some(subject))
            .collect();
        if discovery.subjects.is_empty() && before > 0 {
            eprintln!("neuro-batch: shard {shard} of {before} subjects is empty: nothing to do");
            return Ok(ExitCode::Success);
        }
    }
    if discovery.input_count() == 0 {
        return Err(Failure::new(
            ExitCode::NoInputs,
            anyhow!(
                "no input in {} matches the filters (suffix {}, participants {:?}, sessions {:?})",
                dataset.root.display(),
                args.suffix.join(","),
                args.participant_label,
                args.session_label
            ),
        ));
    }
    if args.dry_run {
        let jobs = plan(&discovery, out_root, &config);
        print_plan(&dataset, &discovery, &jobs, out_root, &config, args.format);
        return Ok(ExitCode::Success);
    }

    prepare_output_root(out_root, &dataset)
        .with_context(|| format!("cannot create the output directory {}", out_root.display()))
        .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    let jobs = plan(&discovery, out_root, &config);
    let started = chrono::Utc::now();
    let clock = Instant::now();

    let _ = ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(ExitCode::Interrupted.code().into());
        }
        eprintln!("neuro-batch: interrupted: finishing files in flight (Ctrl-C again to abort)");
    });
    let progress = progress_bar(discovery.input_count() as u64, args.format);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .thread_name(|i| format!("neuro-batch-{i}"))
        .build()
        .context("cannot start the worker pool")?;
    let metrics = Metrics::new();
    let ctx = Context {
        config: &config,
        cancel: &CANCEL,
        progress: &progress,
        batch_id: run_id,
        batch_link: batch_link.as_ref(),
        metrics: &metrics,
    };
    let results = schedule(
        &pool,
        &jobs,
        SubjectJob::estimated_bytes,
        config.memory_budget_bytes,
        config.threads,
        &CANCEL,
        |job| process_subject(job, &ctx),
    );
    progress.finish_and_clear();

    let subjects: Vec<SubjectRecord> = results
        .into_iter()
        .zip(&jobs)
        .map(|(result, job)| match result {
            Scheduled::Done(record) => record,
            Scheduled::Panicked(message) => unfinished(
                job,
                FileStatus::Failed,
                Some(format!(
                    "internal error while processing sub-{}: {message}",
                    job.label
                )),
            ),
            Scheduled::NotStarted => unfinished(job, FileStatus::Cancelled, None),
        })
        .collect();
    let interrupted = CANCEL.load(Ordering::SeqCst);
    let report = RunReport {
        run_id: run_id.to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: std::env::args().collect(),
        started: started.to_rfc3339(),
        finished: chrono::Utc::now().to_rfc3339(),
        duration_s: clock.elapsed().as_secs_f64(),
        bids_dir: dataset.root.clone(),
        output_dir: out_root.to_path_buf(),
        trace_file: telemetry.trace_file().map(Path::to_path_buf),
        otlp_endpoint: telemetry.otlp_url().map(str::to_string),
        traceparent: batch_link.as_ref().map(|sc| {
            format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            )
        }),
        threads: config.threads,
        memory_budget_bytes: config.memory_budget_bytes,
        stages: config.stages.iter().map(|s| s.name()).collect(),
        settings: config.settings.clone(),
        interrupted,
        shard: shard.map(|s| s.to_string()),
        slurm_job_id: std::env::var("SLURM_ARRAY_JOB_ID").ok(),
        counts: Counts::of(&subjects),
        warnings: discovery.warnings.clone(),
        subjects,
    };
    let report_path = out_root
        .join(LOGS_DIR)
        .join(format!("neuro-batch-run-{run_id}.json"));
    write_json_atomic(&report_path, &report)
        .with_context(|| format!("cannot write the run report {}", report_path.display()))
        .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    eprint!("{}", report.human_summary(&report_path));
    match (telemetry.trace_file(), telemetry.otlp_url()) {
        (Some(file), _) => eprintln!("traces:  {}", file.display()),
        (None, Some(url)) => eprintln!("traces:  {url}"),
        (None, None) => {}
    }
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("report to JSON")?
        );
    }
    Ok(if interrupted {
        ExitCode::Interrupted
    } else if report.counts.failed > 0 {
        ExitCode::SomeFailed
    } else {
        ExitCode::Success
    })
}

fn run_config(args: &RunArgs) -> Result<RunConfig, Failure> {
    let mut stages: Vec<Stage> = if args.stages.is_empty() {
        Stage::ALL.to_vec()
    } else {
        args.stages.clone()
    };
    stages.retain(|s| !args.skip_stages.contains(s));
    stages.sort();
    stages.dedup();
    let threads = args
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let memory_budget_bytes = match args.mem_gb {
        Some(gb) if gb.is_finite() && gb > 0.0 => (gb * 1e9) as u64,
        Some(gb) => {
            return Err(Failure::new(
                ExitCode::Usage,
                anyhow!("--mem-gb must be positive, got {gb}"),
            ));
        }
        None => {
            let mut system = sysinfo::System::new();
            system.refresh_memory();
            (system.available_memory() as f64 * 0.75) as u64
        }
    };
    Ok(RunConfig {
        stages,
        settings: StageSettings::default(),
        compression_level: args.compression_level,
        overwrite: args.overwrite,
        save_intermediates: args.save_intermediates,
        threads,
        memory_budget_bytes,
    })
}

/// The record of a subject that did not finish: every file gets `status` and `error`.
fn unfinished(job: &SubjectJob, status: FileStatus, error: Option<String>) -> SubjectRecord {
    SubjectRecord {
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
                outputs: Vec::new(),
                error: error.clone(),
            })
            .collect(),
    }
}

fn progress_bar(len: u64, format: Format) -> indicatif::ProgressBar {
    if format == Format::Json {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} files  ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

fn print_plan(
    dataset: &Dataset,
    discovery: &Discovery,
    jobs: &[SubjectJob],
    out_root: &Path,
    config: &RunConfig,
    format: Format,
) {
    match format {
        Format::Json => {
            let subjects: Vec<_> = jobs
                .iter()
                .map(|job| {
                    json!({
                        "subject": job.label,
                        "sessions": job.sessions,
                        "inputs": job.files.iter().map(|f| json!({
                            "path": f.input.path,
                            "relative": f.input.relative,
                            "session": f.input.session,
                            "entities": f.input.name.entities.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                            "suffix": f.input.name.suffix,
                            "extension": f.input.name.extension,
                            "outputs": f.outputs.all(),
                            "complete": f.complete,
                            "estimated_bytes": f.estimated_bytes,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let plan = json!({
                "bids_dir": dataset.root,
                "output_dir": out_root,
                "stages": config.stages.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "subject_count": jobs.len(),
                "input_count": discovery.input_count(),
                "warnings": discovery.warnings,
                "subjects": subjects,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).expect("plan serializes")
            );
        }
        Format::Human => {
            println!(
                "{} subjects, {} inputs in {} -> {}",
                jobs.len(),
                discovery.input_count(),
                dataset.root.display(),
                out_root.display()
            );
            for job in jobs {
                for f in &job.files {
                    let done = if f.complete { "  (done)" } else { "" };
                    println!("  sub-{}  {}{done}", job.label, f.input.relative.display());
                }
            }
        }
    }
}
