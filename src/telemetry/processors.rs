//! Span processors around the SDK's batch processor: one that counts every span that ends,
//! one shared so the trace file can be flushed before the run report is written, and one
//! whose shutdown is capped so a hung collector cannot hold the run.

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanData, SpanProcessor};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Spans that ended (and so should reach every exporter), and how many were trace roots.
#[derive(Debug, Default)]
pub struct SpanCounts {
    /// Spans ended.
    pub ended: AtomicU64,
    /// Root spans ended: one per traced (sampled) subject.
    pub roots: AtomicU64,
}

/// Counts every span that ends, before any exporter can drop it. Registered first.
#[derive(Debug)]
pub struct EndCounter(pub Arc<SpanCounts>);

impl SpanProcessor for EndCounter {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.ended.fetch_add(1, Ordering::Relaxed);
        if span.parent_span_id == SpanId::INVALID {
            self.0.roots.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A batch processor that the provider and [`crate::telemetry::Telemetry`] both hold. Being
/// shared, it cannot pass the provider's resource on: give it to the exporter when it is made.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<BatchSpanProcessor>);

impl SpanProcessor for Shared {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}

/// A batch processor whose final flush waits at most `cap`; what it could not send by then is
/// counted as undelivered. `force_flush` does nothing: only the shutdown waits on it.
#[derive(Debug)]
pub struct Capped {
    /// The OTLP batch processor.
    pub inner: BatchSpanProcessor,
    /// The longest the final flush may take.
    pub cap: Duration,
}

impl SpanProcessor for Capped {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout.min(self.cap))
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}
