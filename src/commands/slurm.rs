//! `neuro-batch slurm`: write or submit an sbatch array whose tasks run one shard each, tied
//! together by one trace context, and (with --wait) merge their reports.

use super::{Globals, absolute, discover_inputs, new_run_id, telemetry_for};
use crate::cli::{RunArgs, SlurmArgs};
use crate::derivatives::{LOGS_DIR, prepare_output_root, write_atomic, write_json_atomic};
use crate::error::{ExitCode, Failure};
use crate::slurm::merge::merge;
use crate::slurm::script::{ArrayJob, render};
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
    let out_root = absolute(&args.run.output_dir);
    // Only a submitted job traces (its `batch` span); printing a script logs only.
    let trace_file = args.submit.then(|| {
        out_root
            .join(LOGS_DIR)
            .join(format!("traces-{batch_id}.jsonl"))
    });
    let telemetry = telemetry_for(&args.run, globals, trace_file);
    let result = slurm_job(&args, &batch_id, &out_root);
    if let Some(warning) = telemetry.shutdown() {
        eprintln!("neuro-batch: warning: {warning}");
    }
    result
}

fn slurm_job(args: &SlurmArgs, batch_id: &str, out_root: &Path) -> Result<ExitCode, Failure> {
    let run = &args.run;
    let (dataset, discovery) = discover_inputs(run)?;
    let subjects = discovery.subjects.len();
    if subjects == 0 {
        return Err(Failure::new(
            ExitCode::NoInputs,
            anyhow!("no input in {} matches the filters", dataset.root.display()),
        ));
    }
    let tasks = args.tasks.map_or(subjects, |t| t as usize).min(subjects);
    let exe = std::env::current_exe().context("cannot locate the neuro-batch executable")?;
    let job = ArrayJob {
        tasks,
        max_parallel: args.max_parallel.map(|k| k as usize),
        cpus_per_task: run.threads,
        mem_gb: run.mem_gb,
        log_dir: out_root.join(LOGS_DIR),
        sbatch_args: args.sbatch_args.clone(),
        command: task_command(&exe, &dataset.root, out_root, run),
    };
    let script = render(&job);
    if !args.submit {
        print!("{script}");
        return Ok(ExitCode::Success);
    }

    prepare_output_root(out_root, &dataset)
        .with_context(|| format!("cannot create the output directory {}", out_root.display()))
        .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    let script_path = out_root
        .join(LOGS_DIR)
        .join(format!("neuro-batch-{batch_id}.sbatch"));
    write_atomic(&script_path, script.as_bytes())
        .with_context(|| format!("cannot write {}", script_path.display()))
        .map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;

    let span = tracing::info_span!(parent: None, "batch", batch.id = %batch_id);
    span.set_attribute("slurm.tasks", tasks as i64);
    span.set_attribute("batch.subject_count", subjects as i64);
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
        .arg(&script_path)
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
    span.set_attribute("slurm.job_id", job_id.clone());
    eprintln!(
        "neuro-batch: submitted SLURM array job {job_id} ({tasks} tasks); script {}",
        script_path.display()
    );
    if !args.wait {
        span.set_status(Status::Ok);
        return Ok(ExitCode::Success);
    }

    let merged = merge(&out_root.join(LOGS_DIR), &job_id, tasks).with_context(|| {
        format!(
            "cannot read the shard reports in {}",
            out_root.join(LOGS_DIR).display()
        )
    })?;
    let summary_path = out_root
        .join(LOGS_DIR)
        .join(format!("neuro-batch-slurm-{job_id}.json"));
    write_json_atomic(&summary_path, &merged)
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

/// The `neuro-batch run` command line of every task (before `--shard`).
fn task_command(exe: &Path, bids: &Path, out: &Path, run: &RunArgs) -> Vec<String> {
    let mut c: Vec<String> = vec![
        exe.display().to_string(),
        "run".into(),
        bids.display().to_string(),
        out.display().to_string(),
        "participant".into(),
    ];
    let mut list = |flag: &str, values: &[String]| {
        if !values.is_empty() {
            c.push(flag.into());
            c.extend(values.iter().cloned());
        }
    };
    list("--participant-label", &run.participant_label);
    list("--session-label", &run.session_label);
    list("--suffix", &run.suffix);
    let stages = |v: &[crate::stages::Stage]| {
        v.iter()
            .map(|s| {
                clap::ValueEnum::to_possible_value(s)
                    .expect("stage value")
                    .get_name()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    if !run.stages.is_empty() {
        c.extend(["--stages".into(), stages(&run.stages)]);
    }
    if !run.skip_stages.is_empty() {
        c.extend(["--skip-stages".into(), stages(&run.skip_stages)]);
    }
    if let Some(t) = run.threads {
        c.extend(["--threads".into(), t.to_string()]);
    }
    if let Some(gb) = run.mem_gb {
        c.extend(["--mem-gb".into(), gb.to_string()]);
    }
    if run.overwrite {
        c.push("--overwrite".into());
    }
    if run.save_intermediates {
        c.push("--save-intermediates".into());
    }
    c.extend([
        "--compression-level".into(),
        run.compression_level.to_string(),
    ]);
    if let Some(endpoint) = &run.otlp_endpoint {
        c.push(format!("--otlp-endpoint={endpoint}"));
    }
    if let Some(p) = run.otlp_protocol {
        c.extend(["--otlp-protocol".into(), p.as_str().into()]);
    }
    c
}
