//! Telemetry: logs on stderr, one OpenTelemetry trace per subject, OTLP export, and the
//! embedded trace store.
//!
//! With no OTLP endpoint configured, traces go to a JSON-lines file (see [`file_exporter`]);
//! `--trace-file` writes that file in addition to OTLP; `OTEL_SDK_DISABLED=true` turns
//! traces and metrics off. Export never blocks or fails the batch:
//! spans are batched on the SDK's own thread, and at the end one warning says how many spans
//! never reached the collector.

pub mod file_exporter;
pub mod logs;
pub mod metrics;
pub mod names;
pub mod otlp;
pub mod usage;

pub use logs::LogFormat;
pub use otlp::Protocol;

use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, propagation::TextMapPropagator};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, TracerProviderBuilder,
};
use otlp::{CountingExporter, DeliveryStats, EndCounter, OtlpTarget};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// What to set up.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// `-v` count: 0 warn, 1 info, 2+ debug (RUST_LOG overrides).
    pub verbosity: u8,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// `--otlp-endpoint`.
    pub otlp_endpoint: Option<String>,
    /// `--otlp-protocol`.
    pub otlp_protocol: Option<Protocol>,
    /// `--trace-file`: always written when given.
    pub trace_file: Option<PathBuf>,
    /// Written when no OTLP endpoint is configured (the embedded default); `None` disables
    /// tracing for commands that do not trace.
    pub default_trace_file: Option<PathBuf>,
}

/// Installed telemetry; call [`Telemetry::shutdown`] to flush before exiting.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    otlp: Option<(String, Arc<DeliveryStats>)>,
    trace_file: Option<(PathBuf, Arc<file_exporter::FileStats>)>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// What [`Telemetry::shutdown`] found: problems worth a line in the summary.
#[derive(Debug, Default)]
pub struct Shutdown {
    /// One line per problem (undelivered OTLP spans, trace file write failures).
    pub warnings: Vec<String>,
    /// Spans of this run are missing from the trace file.
    pub trace_file_incomplete: bool,
}

impl Telemetry {
    /// Install the global subscriber (logs, and traces where configured). Problems with the
    /// telemetry setup become warnings, never errors.
    pub fn init(options: TelemetryOptions) -> Self {
        let mut warnings = Vec::new();
        let options = honour_sdk_disabled(options);
        let target = otlp_target(&options, &mut warnings);
        let trace_file = options.trace_file.clone().or_else(|| {
            target
                .is_none()
                .then(|| options.default_trace_file.clone())
                .flatten()
        });

        let resource = resource();
        let mut builder = SdkTracerProvider::builder().with_resource(resource.clone());
        let trace_file = trace_file.map(|path| (path, Arc::default()));
        if let Some((path, stats)) = &trace_file {
            let exporter = file_exporter::JsonlExporter::new(path.clone(), Arc::clone(stats));
            builder = builder.with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch_config())
                    .build(),
            );
        }
        let mut exporting = None;
        if let Some(target) = target {
            let (with_otlp, otlp) = OtlpExport::start(target, builder, &resource, &mut warnings);
            builder = with_otlp;
            exporting = Some(otlp);
        }
        let (otlp, meter_provider, runtime) = match exporting {
            Some(e) => (e.traces, e.meter_provider, e.runtime),
            None => (None, None, None),
        };
        let tracer_provider = (trace_file.is_some() || otlp.is_some()).then(|| builder.build());

        install_subscriber(&options, tracer_provider.as_ref());
        for w in warnings {
            tracing::warn!("{w}");
        }
        Self {
            tracer_provider,
            meter_provider,
            otlp,
            trace_file,
            runtime,
        }
    }

    /// Logs only (for commands that do not trace).
    pub fn logs_only(verbosity: u8, log_format: LogFormat) -> Self {
        Self::init(TelemetryOptions {
            verbosity,
            log_format,
            otlp_endpoint: None,
            otlp_protocol: None,
            trace_file: None,
            default_trace_file: None,
        })
    }

    /// The JSON-lines trace file being written, if any.
    pub fn trace_file(&self) -> Option<&Path> {
        self.trace_file.as_ref().map(|(path, _)| path.as_path())
    }

    /// The OTLP traces URL, if exporting.
    pub fn otlp_url(&self) -> Option<&str> {
        self.otlp.as_ref().map(|(url, _)| url.as_str())
    }

    /// Flush and stop exporters; says which spans did not reach the collector or the trace file.
    pub fn shutdown(self) -> Shutdown {
        if let Some(provider) = &self.tracer_provider
            && let Err(e) = provider.shutdown()
        {
            tracing::debug!("trace provider shutdown: {e}");
        }
        if let Some(provider) = &self.meter_provider
            && let Err(e) = provider.shutdown()
        {
            tracing::debug!("meter provider shutdown: {e}");
        }
        if let Some(rt) = self.runtime {
            rt.shutdown_background();
        }
        let mut out = Shutdown::default();
        if let Some((path, stats)) = &self.trace_file {
            let failed = stats.failed.load(Ordering::Relaxed);
            if failed > 0 {
                let written = stats.written.load(Ordering::Relaxed);
                let reason = last_error(&stats.last_error).unwrap_or_default();
                out.warnings.push(format!(
                    "trace file {}: {failed} of {} spans could not be written ({reason})",
                    path.display(),
                    failed + written
                ));
                out.trace_file_incomplete = true;
            }
        }
        if let Some((url, stats)) = &self.otlp {
            let ended = stats.ended.load(Ordering::Relaxed);
            let delivered = stats.delivered.load(Ordering::Relaxed);
            if delivered < ended {
                let reason =
                    last_error(&stats.last_error).unwrap_or_else(|| "dropped before export".into());
                out.warnings.push(format!(
                    "OTLP export: {} of {ended} spans were not delivered to {url} ({reason})",
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

/// `OTEL_SDK_DISABLED=true`, the standard switch for "no telemetry at all": no trace file.
fn honour_sdk_disabled(options: TelemetryOptions) -> TelemetryOptions {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if disabled {
        TelemetryOptions {
            trace_file: None,
            default_trace_file: None,
            ..options
        }
    } else {
        options
    }
}

/// Where OTLP goes, for a command that traces; a bad setting is a warning and the trace file
/// is written instead.
fn otlp_target(options: &TelemetryOptions, warnings: &mut Vec<String>) -> Option<OtlpTarget> {
    let tracing_wanted = options.default_trace_file.is_some() || options.trace_file.is_some();
    if !tracing_wanted {
        return None;
    }
    OtlpTarget::resolve(
        options.otlp_endpoint.as_deref(),
        options.otlp_protocol,
        |k| std::env::var(k).ok(),
    )
    .unwrap_or_else(|e| {
        warnings.push(format!("{e}; writing traces to the trace file instead"));
        None
    })
}

/// The OTLP side of the telemetry: traces (with delivery counts) and metrics.
struct OtlpExport {
    traces: Option<(String, Arc<DeliveryStats>)>,
    meter_provider: Option<SdkMeterProvider>,
    /// tonic needs a Tokio runtime, alive while exporting; HTTP needs none.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OtlpExport {
    /// Adds the span exporter to `builder` and installs the meter provider.
    fn start(
        target: OtlpTarget,
        mut builder: TracerProviderBuilder,
        resource: &Resource,
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
                builder = builder
                    .with_span_processor(EndCounter(Arc::clone(&stats)))
                    .with_span_processor(
                        BatchSpanProcessor::builder(CountingExporter::new(
                            exporter,
                            Arc::clone(&stats),
                        ))
                        .with_batch_config(batch_config())
                        .build(),
                    );
                traces = Some((target.traces_url(), stats));
            }
            Err(e) => warnings.push(e),
        }
        let meter_provider = match target.metric_exporter() {
            Ok(exporter) => {
                let provider = SdkMeterProvider::builder()
                    .with_resource(resource.clone())
                    .with_reader(PeriodicReader::builder(exporter).build())
                    .build();
                opentelemetry::global::set_meter_provider(provider.clone());
                Some(provider)
            }
            Err(e) => {
                warnings.push(e);
                None
            }
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
    let default_level = match options.verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    let env_filter = EnvFilter::builder()
        .with_default_directive(default_level.into())
        .from_env_lossy();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let fmt = match options.log_format {
        LogFormat::Text => fmt.boxed(),
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
