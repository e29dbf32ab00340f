//! Telemetry: logs on stderr, one OpenTelemetry trace per subject, OTLP export, and the
//! embedded trace store.
//!
//! Every traced run writes a local JSON-lines trace file, the flight recorder (see
//! [`file_exporter`]; `--trace-file` moves it, `--no-trace-file` turns it off), and exports
//! OTLP in addition where an endpoint is configured. `OTEL_TRACES_EXPORTER=none` (or
//! `OTEL_SDK_DISABLED=true`) turns all traces off, `OTEL_METRICS_EXPORTER=none` the metrics.
//! Export never blocks or fails the batch: spans are batched on the SDK's own threads, the
//! final OTLP flush waits at most [`OTLP_FLUSH_CAP`], and at the end one warning per exporter
//! says how many of the spans that ended it did not get.

mod choice;
pub mod cpu;
pub mod file_exporter;
pub mod logs;
pub mod metrics;
pub mod names;
pub mod otlp;
mod processors;
pub mod pushgateway;
pub mod usage;

pub use logs::LogFormat;
pub use otlp::Protocol;

use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, propagation::TextMapPropagator};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanProcessor as _,
    TracerProviderBuilder,
};
use otlp::{CountingExporter, DeliveryStats, OtlpTarget};
use processors::{Capped, EndCounter, Shared, SpanCounts};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// What to set up.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// `-v` count: 0 warn (info on a non-terminal), 1 info, 2+ debug (RUST_LOG overrides).
    pub verbosity: u8,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// `--otlp-endpoint`.
    pub otlp_endpoint: Option<String>,
    /// `--otlp-protocol`.
    pub otlp_protocol: Option<Protocol>,
    /// Whether the command traces at all (`run`, `slurm --submit`); otherwise logs only.
    pub traces: bool,
    /// The local trace file, the run's flight recorder: written whatever else is configured.
    /// `None`: `--no-trace-file`.
    pub trace_file: Option<PathBuf>,
}

/// A telemetry setting that cannot be honoured (a usage error naming the flag or variable).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

/// The longest a collector may hold the end of a run (final OTLP flush, metrics).
pub const OTLP_FLUSH_CAP: Duration = Duration::from_secs(1);

/// Installed telemetry; call [`Telemetry::shutdown`] to flush before exiting.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    spans: Arc<SpanCounts>,
    otlp: Option<(String, Arc<DeliveryStats>)>,
    trace_file: Option<TraceFile>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// The local trace file and what reached it.
struct TraceFile {
    path: PathBuf,
    stats: Arc<file_exporter::FileStats>,
    processor: Shared,
}

/// What reached each exporter so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// Spans ended.
    pub spans_ended: u64,
    /// Subjects traced (root spans; fewer than the subjects when a sampler is set).
    pub traces: u64,
    /// Spans written to the trace file (`None`: no trace file).
    pub trace_file_written: Option<u64>,
    /// Spans accepted by the OTLP collector so far (`None`: no OTLP).
    pub otlp_delivered: Option<u64>,
}

impl Delivery {
    /// A warning when spans that ended are missing from the trace file.
    pub fn trace_file_shortfall(&self) -> Option<String> {
        let written = self.trace_file_written?;
        (written < self.spans_ended).then(|| {
            format!(
                "the trace file holds {written} of the {} spans that ended",
                self.spans_ended
            )
        })
    }
}

/// What [`Telemetry::shutdown`] found: problems worth a line in the summary.
#[derive(Debug, Default)]
pub struct Shutdown {
    /// One line per problem (undelivered OTLP spans, trace file shortfalls).
    pub warnings: Vec<String>,
    /// Spans of this run are missing from the trace file.
    pub trace_file_incomplete: bool,
}

impl Telemetry {
    /// Install the global subscriber (logs, and traces where configured). A malformed setting
    /// is an error; an exporter that cannot be built is a warning.
    pub fn init(options: TelemetryOptions) -> Result<Self, SetupError> {
        let env = |k: &str| std::env::var(k).ok();
        let choice = choice::choose(env).map_err(SetupError)?;
        let traces = options.traces && choice.traces;
        let target = if traces {
            OtlpTarget::resolve(options.otlp_endpoint.as_deref(), options.otlp_protocol, env)
                .map_err(SetupError)?
                .or_else(|| {
                    choice.otlp_forced.then(|| {
                        OtlpTarget::local_stack(
                            options.otlp_protocol.unwrap_or(Protocol::HttpProtobuf),
                        )
                    })
                })
        } else {
            None
        };
        let mut warnings = Vec::new();
        let resource = resource();
        let spans = Arc::new(SpanCounts::default());
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_span_processor(EndCounter(Arc::clone(&spans)));
        let trace_file = options.trace_file.clone().filter(|_| traces).map(|path| {
            let stats = Arc::new(file_exporter::FileStats::default());
            let mut exporter = file_exporter::JsonlExporter::new(path.clone(), Arc::clone(&stats));
            opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource);
            let processor = Shared(Arc::new(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch_config())
                    .build(),
            ));
            builder = std::mem::take(&mut builder).with_span_processor(processor.clone());
            TraceFile {
                path,
                stats,
                processor,
            }
        });
        let exporting = target.map(|target| {
            let (with_otlp, otlp) = OtlpExport::start(
                target,
                std::mem::take(&mut builder),
                &resource,
                choice.metrics,
                &mut warnings,
            );
            builder = with_otlp;
            otlp
        });
        let (otlp, meter_provider, runtime) = match exporting {
            Some(e) => (e.traces, e.meter_provider, e.runtime),
            None => (None, None, None),
        };
        let tracer_provider = (trace_file.is_some() || otlp.is_some()).then(|| builder.build());

        install_subscriber(&options, tracer_provider.as_ref());
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok(Self {
            tracer_provider,
            meter_provider,
            spans,
            otlp,
            trace_file,
            runtime,
        })
    }

    /// Logs only (for commands that do not trace).
    pub fn logs_only(verbosity: u8, log_format: LogFormat) -> Self {
        let options = TelemetryOptions {
            verbosity,
            log_format,
            otlp_endpoint: None,
            otlp_protocol: None,
            traces: false,
            trace_file: None,
        };
        install_subscriber(&options, None);
        Self {
            tracer_provider: None,
            meter_provider: None,
            spans: Arc::default(),
            otlp: None,
            trace_file: None,
            runtime: None,
        }
    }

    /// The JSON-lines trace file being written, if any.
    pub fn trace_file(&self) -> Option<&Path> {
        self.trace_file.as_ref().map(|f| f.path.as_path())
    }

    /// The OTLP traces URL, if exporting.
    pub fn otlp_url(&self) -> Option<&str> {
        self.otlp.as_ref().map(|(url, _)| url.as_str())
    }

    /// Writes every ended span to the trace file (creating it, empty, when no span was
    /// sampled) and says what reached each exporter so far.
    pub fn flush(&self) -> Delivery {
        if let Some(file) = &self.trace_file {
            if let Err(e) = file.processor.force_flush() {
                tracing::warn!("trace file {}: flush: {e}", file.path.display());
            }
            if !file.path.exists() {
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file.path);
            }
        }
        self.delivery()
    }

    fn delivery(&self) -> Delivery {
        Delivery {
            spans_ended: self.spans.ended.load(Ordering::Relaxed),
            traces: self.spans.roots.load(Ordering::Relaxed),
            trace_file_written: self
                .trace_file
                .as_ref()
                .map(|f| f.stats.written.load(Ordering::Relaxed) as u64),
            otlp_delivered: self
                .otlp
                .as_ref()
                .map(|(_, s)| s.delivered.load(Ordering::Relaxed)),
        }
    }

    /// Flush and stop exporters: the trace file completely, OTLP within [`OTLP_FLUSH_CAP`];
    /// says which spans did not reach the collector or the trace file.
    pub fn shutdown(self) -> Shutdown {
        let mut out = Shutdown::default();
        let deadline = std::time::Instant::now() + OTLP_FLUSH_CAP;
        // The meter provider's shutdown ignores timeouts: run it beside the traces' and wait
        // for it only until the same deadline, so a hung collector holds the run once.
        let meters = self.meter_provider.map(|provider| {
            let (done, wait) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = done.send(provider.shutdown());
            });
            wait
        });
        if let Some(provider) = &self.tracer_provider
            && let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(30))
            && self.otlp.is_none()
        {
            out.warnings.push(format!("trace export shutdown: {e}"));
        }
        if let Some(wait) = meters {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Ok(Err(e)) = wait.recv_timeout(left) {
                tracing::debug!("meter provider shutdown: {e}");
            }
        }
        if let Some(rt) = self.runtime {
            rt.shutdown_background();
        }
        let ended = self.spans.ended.load(Ordering::Relaxed);
        if let Some(file) = &self.trace_file {
            let written = file.stats.written.load(Ordering::Relaxed) as u64;
            if written < ended {
                let reason = last_error(&file.stats.last_error)
                    .unwrap_or_else(|| "dropped before export".into());
                out.warnings.push(format!(
                    "trace file {}: {} of {ended} spans could not be written ({reason})",
                    file.path.display(),
                    ended - written
                ));
                out.trace_file_incomplete = true;
            }
        }
        if let Some((url, stats)) = &self.otlp {
            let delivered = stats.delivered.load(Ordering::Relaxed);
            if delivered < ended {
                let reason = last_error(&stats.last_error).unwrap_or_else(|| {
                    format!("not sent within {} s of the end", OTLP_FLUSH_CAP.as_secs())
                });
                out.warnings.push(format!(
                    "OTLP export: {} of {ended} spans were not delivered to {url} ({reason}); \
                     the trace file has them",
                    ended - delivered
                ));
            }
        }
        out
    }
}

fn last_error(slot: &std::sync::Mutex<Option<String>>) -> Option<String> {
    slot.lock().ok().and_then(|e| e.clone())
}

/// The OTLP side of the telemetry: traces (with delivery counts) and metrics.
struct OtlpExport {
    traces: Option<(String, Arc<DeliveryStats>)>,
    meter_provider: Option<SdkMeterProvider>,
    /// tonic needs a Tokio runtime, alive while exporting; HTTP needs none.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OtlpExport {
    /// Adds the span exporter to `builder` and, with `metrics`, installs the meter provider.
    fn start(
        target: OtlpTarget,
        mut builder: TracerProviderBuilder,
        resource: &Resource,
        metrics: bool,
        warnings: &mut Vec<String>,
    ) -> (TracerProviderBuilder, OtlpExport) {
        let runtime = (target.protocol == Protocol::Grpc)
            .then(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("neuro-batch-otlp")
                    .enable_all()
                    .build()
            })
            .transpose()
            .unwrap_or_else(|e| {
                warnings.push(format!("cannot start the gRPC runtime: {e}"));
                None
            });
        let _entered = runtime.as_ref().map(|r| r.enter());
        let mut traces = None;
        match target.span_exporter() {
            Ok(exporter) => {
                let stats = Arc::new(DeliveryStats::default());
                let inner = BatchSpanProcessor::builder(CountingExporter::new(
                    exporter,
                    Arc::clone(&stats),
                ))
                .with_batch_config(batch_config())
                .build();
                builder = builder.with_span_processor(Capped {
                    inner,
                    cap: OTLP_FLUSH_CAP,
                });
                traces = Some((target.traces_url(), stats));
            }
            Err(e) => warnings.push(e),
        }
        let meter_provider = match metrics.then(|| target.metric_exporter()) {
            Some(Ok(exporter)) => {
                let provider = SdkMeterProvider::builder()
                    .with_resource(resource.clone())
                    .with_reader(PeriodicReader::builder(exporter).build())
                    .build();
                opentelemetry::global::set_meter_provider(provider.clone());
                Some(provider)
            }
            Some(Err(e)) => {
                warnings.push(e);
                None
            }
            None => None,
        };
        drop(_entered);
        let export = OtlpExport {
            traces,
            meter_provider,
            runtime,
        };
        (builder, export)
    }
}

/// The span context a batch belongs to, from `--traceparent` or the `TRACEPARENT` and
/// `TRACESTATE` variables (the OpenTelemetry environment-carrier convention).
pub fn batch_context(flag: Option<&str>) -> Result<Option<SpanContext>, String> {
    let mut carrier = HashMap::new();
    match flag {
        Some(tp) => {
            carrier.insert("traceparent".to_string(), tp.to_string());
        }
        None => {
            for key in ["TRACEPARENT", "TRACESTATE"] {
                if let Ok(value) = std::env::var(key) {
                    carrier.insert(key.to_lowercase(), value);
                }
            }
        }
    }
    let Some(raw) = carrier.get("traceparent").cloned() else {
        return Ok(None);
    };
    let cx = TraceContextPropagator::new().extract(&carrier);
    let span_context = cx.span().span_context().clone();
    if span_context.is_valid() {
        Ok(Some(span_context))
    } else {
        Err(format!(
            "invalid traceparent '{raw}' (expected 00-<32 hex>-<16 hex>-<2 hex>)"
        ))
    }
}

/// `service.name` (`neuro-batch` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` say
/// otherwise), `service.version`, `host.name`, `process.pid`, and `OTEL_RESOURCE_ATTRIBUTES`.
fn resource() -> Resource {
    let mut builder = Resource::builder();
    let named_in_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    if !named_in_env {
        builder = builder.with_service_name(names::SERVICE_NAME);
    }
    builder
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new(
                "host.name",
                sysinfo::System::host_name().unwrap_or_else(|| "unknown".into()),
            ),
            KeyValue::new("process.pid", i64::from(std::process::id())),
        ])
        .build()
}

/// A large queue so bursts are not dropped; `OTEL_BSP_*` variables still override.
fn batch_config() -> opentelemetry_sdk::trace::BatchConfig {
    let builder = BatchConfigBuilder::default();
    if std::env::var("OTEL_BSP_MAX_QUEUE_SIZE").is_ok() {
        builder.build()
    } else {
        builder.with_max_queue_size(65_536).build()
    }
}

fn install_subscriber(options: &TelemetryOptions, provider: Option<&SdkTracerProvider>) {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let default_level = match options.verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    // Without a terminal (a SLURM .out file, CI) there is no progress bar: neuro-batch's own
    // info lines (one per subject, a heartbeat) take its place.
    let mut env_filter = EnvFilter::builder()
        .with_default_directive(default_level.into())
        .from_env_lossy();
    if !terminal && options.verbosity == 0 && std::env::var_os("RUST_LOG").is_none() {
        env_filter = env_filter.add_directive("neuro_batch=info".parse().expect("a directive"));
    }
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    let fmt = match options.log_format {
        LogFormat::Text => {
            let text = tracing_subscriber::fmt::format()
                .with_target(false)
                .with_ansi(ansi);
            fmt.event_format(logs::TextWithTraceIds(text)).boxed()
        }
        LogFormat::Json => fmt.event_format(logs::JsonWithTraceIds).boxed(),
    }
    .with_filter(env_filter);
    // Only neuro-batch's own spans become traces (never the HTTP client's).
    let otel = provider.map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("neuro-batch"))
            .with_location(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(Targets::new().with_target("neuro_batch", LevelFilter::INFO))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
}
