//! `neuro-batch slurm`: write or submit an sbatch array whose tasks run one shard each, tied
//! together by one trace context, and (with --wait) merge their reports.

use super::{Globals, batch_failure, new_run_id, telemetry_for};
use crate::cli::{SlurmArgs, run_command_line};
use crate::derivatives::{layout, prepare_output_root};
use crate::engine::RunConfig;
use crate::engine::batch::{self, BatchError};
use crate::error::{ExitCode, Failure};
use crate::slurm::merge::merge;
use crate::slurm::script::ArrayJob;
use crate::telemetry::names;
use anyhow::{Context as _, anyhow};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::Status;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use std::path::Path;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub(super) fn slurm(args: SlurmArgs, globals: Globals) -> Result<ExitCode, Failure> {
    if args.run.shard.is_some() || args.run.shard_count.is_some() {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow!("--shard is set per task by the array; use --tasks"),
        ));
    }
    let batch_id = new_run_id("slurm-");
    // The tasks pick their shard from SLURM's variables; this process runs none.
    let config = super::run::config(&args.run)?;
    let config = RunConfig {
        shard: None,
        ..config
    };
    // Only a submitted job traces (its `batch` span); printing a script logs only.
    let trace_file = args
        .submit
        .then(|| layout::trace_file(&config.output_dir, &batch_id));
    let telemetry = telemetry_for(&args.run, globals, trace_file)?;
    let result = slurm_job(&args, &config, &batch_id);
    for warning in telemetry.shutdown().warnings {
        eprintln!("neuro-batch: warning: {warning}");
    }
    result
}

fn slurm_job(args: &SlurmArgs, config: &RunConfig, batch_id: &str) -> Result<ExitCode, Failure> {
    let out_root = &config.output_dir;
    let (dataset, discovery) = batch::discover(config).map_err(batch_failure)?;
    let subjects = discovery.subjects.len();
    if subjects == 0 {
        return Err(batch_failure(BatchError::no_inputs(
            &dataset.root,
            &config.filters,
        )));
    }
    let tasks = args.tasks.map_or(subjects, |t| t as usize).min(subjects);
    let exe = std::env::current_exe().context("cannot locate the neuro-batch executable")?;
    let task_config = RunConfig {
        bids_dir: dataset.root.clone(),
        ..config.clone()
    };
    let mut command = run_command_line(&exe, &task_config, &args.run.export());
    if let Some(launcher) = &args.launcher {
        command.splice(..1, launcher.0.iter().cloned());
    }
    let job = ArrayJob {
        tasks,
        max_parallel: args.max_parallel.map(|k| k as usize),
        cpus_per_task: config.threads,
        mem_gb: config.mem_gb,
        log_file: layout::slurm_task_log(out_root),
        sbatch_args: args.sbatch_args.clone(),
        command,
    };
    let script = job.script();
    if !args.submit {
        print!("{script}");
        return Ok(ExitCode::Success);
    }

    prepare_output_root(out_root, &dataset)
        .with_context(|| format!("cannot create the output directory {}", out_root.display()))
        .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    let script_path = layout::sbatch_script(out_root, batch_id);
    neuro_batch_fsutil::write_atomic(&script_path, script.as_bytes())
        .with_context(|| format!("cannot write {}", script_path.display()))
        .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    submit(args, &script_path, out_root, batch_id, tasks, subjects)
}

/// Submit the script with sbatch inside a `batch` span whose context every task inherits;
/// with `--wait`, merge the shard reports.
fn submit(
    args: &SlurmArgs,
    script_path: &Path,
    out_root: &Path,
    batch_id: &str,
    tasks: usize,
    subjects: usize,
) -> Result<ExitCode, Failure> {
    let span = tracing::info_span!(parent: None, names::SLURM_BATCH);
    span.set_attribute(names::SLURM_TASKS, tasks as i64);
    span.set_attribute(names::BATCH_SUBJECT_COUNT, subjects as i64);
    span.set_attribute(names::BATCH_ID, batch_id.to_string());
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    let _entered = span.enter();

    let mut sbatch = std::process::Command::new("sbatch");
    sbatch.arg("--parsable");
    if args.wait {
        sbatch.arg("--wait");
    }
    // Array tasks inherit the environment: TRACEPARENT links each subject trace to `batch`.
    for (key, value) in &carrier {
        sbatch.env(key.to_uppercase(), value);
    }
    let output = sbatch
        .arg(script_path)
        .output()
        .map_err(|e| Failure::new(ExitCode::Unavailable, anyhow!("cannot run sbatch: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let job_id = stdout
        .lines()
        .filter_map(|l| l.split(';').next())
        .find(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string);
    let Some(job_id) = job_id else {
        span.set_status(Status::error("sbatch refused the job"));
        return Err(Failure::new(
            ExitCode::Unavailable,
            anyhow!(
                "sbatch refused the job: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    };
    span.set_attribute(names::SLURM_JOB_ID, job_id.clone());
    eprintln!(
        "neuro-batch: submitted SLURM array job {job_id} ({tasks} tasks); script {}",
        script_path.display()
    );
    if !args.wait {
        span.set_status(Status::Ok);
        return Ok(ExitCode::Success);
    }

    let logs = out_root.join(layout::LOGS_DIR);
    let merged = merge(&logs, &job_id, tasks)
        .with_context(|| format!("cannot read the shard reports in {}", logs.display()))?;
    let summary_path = layout::slurm_summary(out_root, &job_id);
    neuro_batch_fsutil::write_json_atomic(&summary_path, &merged)
        .with_context(|| format!("cannot write {}", summary_path.display()))
        .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    eprint!("{}", merged.human_summary());
    eprintln!("summary: {}", summary_path.display());
    if merged.succeeded() && output.status.success() {
        span.set_status(Status::Ok);
        Ok(ExitCode::Success)
    } else {
        span.set_status(Status::error(format!(
            "{} inputs failed, {} shards missing",
            merged.failed,
            merged.missing_shards.len()
        )));
        Ok(ExitCode::SomeFailed)
    }
}
