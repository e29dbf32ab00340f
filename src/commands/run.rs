//! `neuro-batch run`: the flags become a [`RunConfig`], [`batch`] runs it, and the summary,
//! report and exit code come back here.

use super::{Globals, batch_failure, new_run_id, telemetry_for};
use crate::cli::{AnalysisLevel, Format, RunArgs};
use crate::derivatives::layout;
use crate::engine::batch::{self, Batch, Planned, RunContext};
use crate::engine::cancel::CancelToken;
use crate::engine::report::Outcome;
use crate::engine::{RunConfig, plan::SubjectJob};
use crate::error::{ExitCode, Failure};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::{self, Telemetry};
use anyhow::{Context as _, anyhow};
use serde_json::json;

pub(super) fn run(args: RunArgs, globals: Globals) -> Result<ExitCode, Failure> {
    // First, so that a signal at any moment of the run ends it the same way.
    let cancel = on_interrupt();
    let run_id = new_run_id("");
    let config = config(&args)?;
    let trace_file = layout::trace_file(&config.output_dir, &run_id);
    let telemetry = telemetry_for(&args, globals, Some(trace_file))?;
    let result = run_with(&args, &config, &run_id, &telemetry, &cancel);
    let shutdown = telemetry.shutdown();
    for warning in &shutdown.warnings {
        eprintln!("neuro-batch: warning: {warning}");
    }
    match result {
        Ok(ExitCode::Success | ExitCode::SomeFailed) if shutdown.trace_file_incomplete => {
            Ok(ExitCode::RecordsIncomplete)
        }
        other => other,
    }
}

/// The run's configuration, after refusing the `group` level.
pub(super) fn config(args: &RunArgs) -> Result<RunConfig, Failure> {
    if args.analysis_level == AnalysisLevel::Group {
        return Err(Failure::new(
            ExitCode::LevelNotImplemented,
            anyhow!("analysis level 'group' is not implemented; run 'participant'"),
        ));
    }
    args.config(|k| std::env::var(k).ok())
        .map_err(|e| Failure::new(ExitCode::Usage, anyhow!("{e}")))
}

/// SIGINT or SIGTERM cancels: files in flight finish, nothing new starts, the report is
/// written and the run exits 130. A second signal exits at once.
fn on_interrupt() -> CancelToken {
    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if on_signal.cancel() {
            std::process::exit(ExitCode::Interrupted.code().into());
        }
        eprintln!("neuro-batch: interrupted: finishing files in flight (Ctrl-C again to abort)");
    });
    cancel
}

fn run_with(
    args: &RunArgs,
    config: &RunConfig,
    run_id: &str,
    telemetry: &Telemetry,
    cancel: &CancelToken,
) -> Result<ExitCode, Failure> {
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
    let batch = match batch::prepare(config).map_err(batch_failure)? {
        Planned::Batch(batch) => batch,
        Planned::EmptyShard { subjects } => {
            let shard = config.shard.expect("only a shard can be empty");
            eprintln!("neuro-batch: shard {shard} of {subjects} subjects is empty: nothing to do");
            return Ok(ExitCode::Success);
        }
    };
    if args.dry_run {
        if cancel.is_cancelled() {
            return Ok(ExitCode::Interrupted);
        }
        print_plan(&batch, config, args.format);
        return Ok(ExitCode::Success);
    }

    let progress = progress_bar(batch.discovery.input_count() as u64, args.format);
    let metrics = Metrics::new();
    let ctx = RunContext {
        run_id,
        command: std::env::args().collect(),
        batch_link: batch_link.as_ref(),
        trace_file: telemetry.trace_file().map(|p| p.to_path_buf()),
        otlp_endpoint: telemetry.otlp_url().map(str::to_string),
        slurm_job_id: std::env::var("SLURM_ARRAY_JOB_ID").ok(),
        progress: &progress,
        metrics: &metrics,
        telemetry: Some(telemetry),
    };
    let finished = with_heartbeat(&progress, || batch::run(config, batch, &ctx, cancel))
        .map_err(batch_failure)?;
    let report = &finished.report;
    let written = finished.report_error.is_none();
    eprint!(
        "{}",
        report.human_summary(written.then_some(finished.report_path.as_path()))
    );
    if let Some(e) = &finished.report_error {
        eprintln!("neuro-batch: error: {e}; this summary is the only record of the run");
    }
    let destinations: Vec<String> = telemetry
        .trace_file()
        .map(|f| f.display().to_string())
        .into_iter()
        .chain(telemetry.otlp_url().map(str::to_string))
        .collect();
    if !destinations.is_empty() {
        let sampled = match report.traces {
            Some(d) if (d.traces as usize) < report.subjects.len() => format!(
                " ({} of {} subjects traced: OTEL_TRACES_SAMPLER)",
                d.traces,
                report.subjects.len()
            ),
            _ => String::new(),
        };
        eprintln!("traces:  {}{sampled}", destinations.join(" and "));
    }

    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).context("report to JSON")?
        );
    }
    Ok(match report.outcome() {
        Outcome::Interrupted => ExitCode::Interrupted,
        _ if finished.report_error.is_some() => ExitCode::RecordsIncomplete,
        Outcome::Success => ExitCode::Success,
        Outcome::SomeFailed => ExitCode::SomeFailed,
    })
}

/// How often a run without a terminal says how far it is.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `work`; without a terminal (where the progress bar is hidden) logs `done/total` files
/// every [`HEARTBEAT`] meanwhile, so SLURM and CI logs show progress.
fn with_heartbeat<T>(progress: &indicatif::ProgressBar, work: impl FnOnce() -> T) -> T {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        return work();
    }
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            while stopped
                .recv_timeout(HEARTBEAT)
                .is_err_and(|e| e.is_timeout())
            {
                tracing::info!(
                    done = progress.position(),
                    total = progress.length().unwrap_or(0),
                    "progress"
                );
            }
        });
        let out = work();
        drop(stop);
        out
    })
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

fn print_plan(batch: &Batch, config: &RunConfig, format: Format) {
    let (dataset, discovery, jobs) = (&batch.dataset, &batch.discovery, &batch.jobs);
    let out_root = &config.output_dir;
    match format {
        Format::Json => {
            let plan = json!({
                "bids_dir": dataset.root,
                "output_dir": out_root,
                "stages": config.stages.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "subject_count": jobs.len(),
                "input_count": discovery.input_count(),
                "warnings": discovery.warnings,
                "subjects": jobs.iter().map(planned_subject).collect::<Vec<_>>(),
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

/// One subject of the `--dry-run --format json` plan.
fn planned_subject(job: &SubjectJob) -> serde_json::Value {
    let inputs: Vec<serde_json::Value> = job
        .files
        .iter()
        .map(|f| {
            json!({
                "path": f.input.path,
                "relative": f.input.relative,
                "session": f.input.session,
                "entities": f.input.name.entities.iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<serde_json::Map<_, _>>(),
                "suffix": f.input.name.suffix,
                "extension": f.input.name.extension,
                "outputs": f.outputs.all(),
                "complete": f.complete,
                "estimated_bytes": f.estimated_bytes,
            })
        })
        .collect();
    json!({
        "subject": job.label,
        "sessions": job.sessions,
        "inputs": inputs,
    })
}
