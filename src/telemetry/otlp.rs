//! OTLP export (HTTP/protobuf or gRPC), configured by flags or the standard `OTEL_*`
//! variables, and counted so a run can say how many spans never arrived.

use opentelemetry_otlp::{MetricExporter, SpanExporter as OtlpSpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// OTLP/HTTP endpoint of the local stack (`docker compose up`): the collector on 4318.
pub const LOCAL_STACK_HTTP: &str = "http://localhost:4318";
/// OTLP/gRPC endpoint of the local stack: the collector on 4317.
pub const LOCAL_STACK_GRPC: &str = "http://localhost:4317";

/// Wire protocol for OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
}

impl Protocol {
    /// The `OTEL_EXPORTER_OTLP_PROTOCOL` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Where and how to send OTLP, after flags and environment are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    /// Base endpoint (`http://host:4318`) or, from `..._TRACES_ENDPOINT`, the full URL.
    pub endpoint: String,
    /// Whether `endpoint` is already the full traces URL (used verbatim).
    pub traces_url_given: bool,
    /// Wire protocol.
    pub protocol: Protocol,
}

impl OtlpTarget {
    /// Resolve from the `--otlp-endpoint`/`--otlp-protocol` flags, then the standard
    /// variables. `None` when nothing asks for OTLP. `Err` names an unusable setting.
    pub fn resolve(
        endpoint_flag: Option<&str>,
        protocol_flag: Option<Protocol>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let protocol = match protocol_flag {
            Some(p) => p,
            None => match nonempty("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .or_else(|| nonempty("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .as_deref()
            {
                None | Some("http/protobuf") => Protocol::HttpProtobuf,
                Some("grpc") => Protocol::Grpc,
                Some(other) => {
                    return Err(format!(
                        "OTLP protocol '{other}' is not supported (use grpc or http/protobuf)"
                    ));
                }
            },
        };
        // `--otlp-endpoint` without a URL means the local stack.
        let endpoint_flag = endpoint_flag.map(|flag| match (flag, protocol) {
            ("", Protocol::Grpc) => LOCAL_STACK_GRPC,
            ("", Protocol::HttpProtobuf) => LOCAL_STACK_HTTP,
            (url, _) => url,
        });
        let (endpoint, traces_url_given, source) = match (
            endpoint_flag,
            nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            nonempty("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(flag), _, _) => (flag.to_string(), false, "--otlp-endpoint"),
            (None, Some(traces), _) => (traces, true, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            (None, None, Some(base)) => (base, false, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            (None, None, None) => return Ok(None),
        };
        check_url(&endpoint).map_err(|why| format!("{source}={endpoint:?}: {why}"))?;
        Ok(Some(Self {
            endpoint,
            traces_url_given,
            protocol,
        }))
    }

    /// The local stack's collector, for `OTEL_TRACES_EXPORTER=otlp` without an endpoint (the
    /// OpenTelemetry default).
    pub fn local_stack(protocol: Protocol) -> Self {
        let endpoint = match protocol {
            Protocol::Grpc => LOCAL_STACK_GRPC,
            Protocol::HttpProtobuf => LOCAL_STACK_HTTP,
        };
        Self {
            endpoint: endpoint.into(),
            traces_url_given: false,
            protocol,
        }
    }

    /// The URL spans are sent to (for messages).
    pub fn traces_url(&self) -> String {
        match (self.protocol, self.traces_url_given) {
            (Protocol::HttpProtobuf, false) => {
                format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
            }
            _ => self.endpoint.clone(),
        }
    }

    /// The OTLP span exporter for this target. Headers, timeout and compression come from the
    /// standard variables; gRPC must be built inside a Tokio runtime.
    pub fn span_exporter(&self) -> Result<OtlpSpanExporter, String> {
        let built = match self.protocol {
            Protocol::HttpProtobuf => OtlpSpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(self.traces_url())
                .build(),
            Protocol::Grpc => OtlpSpanExporter::builder()
                .with_tonic()
                .with_endpoint(self.endpoint.clone())
                .build(),
        };
        built.map_err(|e| format!("cannot set up OTLP export to {}: {e}", self.traces_url()))
    }

    /// The OTLP metric exporter for the same collector.
    pub fn metric_exporter(&self) -> Result<MetricExporter, String> {
        let built = match (self.protocol, self.traces_url_given) {
            (Protocol::HttpProtobuf, false) => MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!(
                    "{}/v1/metrics",
                    self.endpoint.trim_end_matches('/')
                ))
                .build(),
            // With only a traces URL given, metrics follow the standard variables.
            (Protocol::HttpProtobuf, true) => MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build(),
            (Protocol::Grpc, _) => MetricExporter::builder()
                .with_tonic()
                .with_endpoint(self.endpoint.clone())
                .build(),
        };
        built.map_err(|e| format!("cannot set up OTLP metrics to {}: {e}", self.endpoint))
    }
}

/// Counts of spans accepted by the collector.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Spans the collector accepted.
    pub delivered: AtomicU64,
    /// The last export error, if any.
    pub last_error: Mutex<Option<String>>,
}

/// Wraps the OTLP exporter to count what the collector accepted.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    stats: Arc<DeliveryStats>,
}

impl<E> CountingExporter<E> {
    /// Count deliveries of `inner` into `stats`.
    pub fn new(inner: E, stats: Arc<DeliveryStats>) -> Self {
        Self { inner, stats }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let n = batch.len() as u64;
        let stats = Arc::clone(&self.stats);
        let export = self.inner.export(batch);
        async move {
            let result = export.await;
            match &result {
                Ok(()) => {
                    stats.delivered.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    if let Ok(mut last) = stats.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                }
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// An endpoint must be an absolute http(s) URL with a host.
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("not an http:// or https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || url.chars().any(char::is_whitespace) {
        return Err("no host in the URL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(flag: Option<&str>, vars: &[(&str, &str)]) -> Result<Option<OtlpTarget>, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpTarget::resolve(flag, None, |k| map.get(k).cloned())
    }

    #[test]
    fn flags_then_traces_endpoint_then_base_endpoint() {
        assert_eq!(resolve(None, &[]).unwrap(), None);
        let t = resolve(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(t.traces_url(), "http://c:4318/v1/traces");
        let t = resolve(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9999/custom"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.traces_url(), "http://t:9999/custom");
        let t = resolve(
            Some("http://flag:4317"),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (t.protocol, t.traces_url().as_str()),
            (Protocol::Grpc, "http://flag:4317")
        );
        assert!(
            resolve(
                None,
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "x"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
                ]
            )
            .is_err()
        );
    }
}
