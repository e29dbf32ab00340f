//! `neuro-batch run`: the flags become a [`RunConfig`], [`batch`] runs it, and the summary,
//! report and exit code come back here.

use super::{Globals, batch_failure, new_run_id, plan, progress, telemetry_for};
use crate::cli::{AnalysisLevel, Format, RunArgs};
use crate::derivatives::layout;
use crate::engine::RunConfig;
use crate::engine::batch::{self, Finished, Planned, RunContext};
use crate::engine::cancel::CancelToken;
use crate::engine::report::{Outcome, RunReport};
use crate::error::{ExitCode, Failure};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::pushgateway::Pushgateway;
use crate::telemetry::{self, Telemetry};
use anyhow::{Context as _, anyhow};
use opentelemetry::trace::SpanContext;
use std::io::Write as _;
use std::time::Duration;

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
        say(format_args!("neuro-batch: warning: {warning}\n"));
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
        say(format_args!(
            "neuro-batch: interrupted: finishing files in flight (Ctrl-C again to abort)\n"
        ));
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
    let batch_link = batch_link(args)?;
    let pushgateway = pushgateway(args)?;
    let batch = match batch::prepare(config).map_err(batch_failure)? {
        Planned::Batch(batch) => batch,
        Planned::EmptyShard { subjects } => {
            let shard = config.shard.expect("only a shard can be empty");
            say(format_args!(
                "neuro-batch: shard {shard} of {subjects} subjects is empty: nothing to do\n"
            ));
            return Ok(ExitCode::Success);
        }
    };
    if args.dry_run {
        if cancel.is_cancelled() {
            return Ok(ExitCode::Interrupted);
        }
        plan::print_plan(&batch, config, args.format);
        return Ok(ExitCode::Success);
    }

    let progress = progress::progress_bar(batch.input_count() as u64, args.format);
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
    let finished = progress::with_heartbeat(&progress, || batch::run(config, batch, &ctx, cancel))
        .map_err(batch_failure)?;
    let report = &finished.report;
    print_summary(&finished, telemetry);
    if let Some(gateway) = &pushgateway {
        push_metrics(gateway, report);
    }
    if args.format == Format::Json {
        let json = serde_json::to_string_pretty(report).context("report to JSON")?;
        let _ = writeln!(std::io::stdout(), "{json}");
    }
    Ok(match report.outcome() {
        Outcome::Interrupted => ExitCode::Interrupted,
        _ if finished.report_error.is_some() => ExitCode::RecordsIncomplete,
        Outcome::Success => ExitCode::Success,
        Outcome::SomeFailed => ExitCode::SomeFailed,
    })
}

/// `--metrics-push`, else `NEURO_BATCH_METRICS_PUSH`; a malformed URL is a usage error.
fn pushgateway(args: &RunArgs) -> Result<Option<Pushgateway>, Failure> {
    args.metrics_push
        .clone()
        .or_else(|| std::env::var(PUSH_VARIABLE).ok().filter(|v| !v.is_empty()))
        .map(|url| Pushgateway::parse(&url))
        .transpose()
        .map_err(|e| Failure::new(ExitCode::Usage, anyhow::Error::new(e)))
}

/// Pushes the run's metrics; a failure is one warning, never a failed run.
fn push_metrics(gateway: &Pushgateway, report: &RunReport) {
    match gateway.push(report, PUSH_TIMEOUT) {
        Ok(()) => tracing::info!("metrics pushed to {}", gateway.group_url(report)),
        Err(e) => say(format_args!("neuro-batch: warning: {e}\n")),
    }
}

/// The variable `--metrics-push` defaults to.
const PUSH_VARIABLE: &str = "NEURO_BATCH_METRICS_PUSH";

/// How long the push may take: a hung Pushgateway must not hold a finished batch.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The batch the run belongs to (`--traceparent`, else `TRACEPARENT`); a bad flag is a usage
/// error, a bad variable a warning.
fn batch_link(args: &RunArgs) -> Result<Option<SpanContext>, Failure> {
    match (
        telemetry::batch_context(args.traceparent.as_deref()),
        &args.traceparent,
    ) {
        (Ok(link), _) => Ok(link),
        (Err(e), Some(_)) => Err(Failure::new(ExitCode::Usage, anyhow!("--traceparent: {e}"))),
        (Err(e), None) => {
            tracing::warn!("TRACEPARENT ignored: {e}");
            Ok(None)
        }
    }
}

/// The summary on stderr: counts, failures, where the report and the traces are.
fn print_summary(finished: &Finished, telemetry: &Telemetry) {
    let report = &finished.report;
    let written = finished.report_error.is_none();
    say(format_args!(
        "{}",
        report.human_summary(written.then_some(finished.report_path.as_path()))
    ));
    if let Some(e) = &finished.report_error {
        say(format_args!(
            "neuro-batch: error: {e}; this summary is the only record of the run\n"
        ));
    }
    let destinations: Vec<String> = telemetry
        .trace_file()
        .map(|f| f.display().to_string())
        .into_iter()
        .chain(telemetry.otlp_url().map(str::to_string))
        .collect();
    if destinations.is_empty() {
        return;
    }
    let sampled = match report.traces {
        Some(d) if (d.traces as usize) < report.subjects.len() => format!(
            " ({} of {} subjects traced: OTEL_TRACES_SAMPLER)",
            d.traces,
            report.subjects.len()
        ),
        _ => String::new(),
    };
    say(format_args!(
        "traces:  {}{sampled}\n",
        destinations.join(" and ")
    ));
}

/// Writes to stderr, ignoring a reader that is gone (`2>&1 | head`, a closed log pipe).
/// `eprintln!` panics there, and a panic after the batch ended skipped the telemetry
/// shutdown: the spans still queued were lost and the run exited 101. Output after the run
/// goes through here (stdout through `writeln!`, errors ignored alike).
fn say(text: std::fmt::Arguments) {
    let _ = std::io::stderr().write_fmt(text);
}
