//! The embedded trace store: OTLP JSON lines, one `ExportTraceServiceRequest` per line with
//! hex ids — the format of the OpenTelemetry Collector's file exporter, readable by
//! `neuro-batch analyze` and other tools. The file is created on the first export.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What reached the trace file, shared with [`crate::telemetry::Telemetry`] for its summary.
#[derive(Debug, Default)]
pub struct FileStats {
    /// Spans written.
    pub written: AtomicUsize,
    /// The last write error (disk full, permissions...); the spans it cost are those that
    /// ended but were not written.
    pub last_error: Mutex<Option<String>>,
}

/// Appends span batches to a JSON-lines file. A batch that cannot be written whole is cut
/// back off the file, so the file never holds a partial line in the middle.
#[derive(Debug)]
pub struct JsonlExporter {
    path: PathBuf,
    file: Mutex<Option<(File, u64)>>,
    resource: ResourceAttributesWithSchema,
    stats: Arc<FileStats>,
}

impl JsonlExporter {
    /// An exporter that will append to `path` (parent directories are created on first use),
    /// counting into `stats`.
    pub fn new(path: PathBuf, stats: Arc<FileStats>) -> Self {
        Self {
            path,
            file: Mutex::new(None),
            resource: ResourceAttributesWithSchema::from(&Resource::builder_empty().build()),
            stats,
        }
    }

    fn append(&self, batch: Vec<SpanData>) -> Result<(), String> {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let mut line = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let mut guard = self
            .file
            .lock()
            .map_err(|_| "trace file lock poisoned".to_string())?;
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            *guard = Some((file, len));
        }
        let (file, good_len) = guard.as_mut().expect("opened above");
        match file.write_all(&line) {
            Ok(()) => {
                *good_len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: drop the partial line so later batches start on a line of
                // their own.
                let _ = file.set_len(*good_len);
                Err(format!("{}: {e}", self.path.display()))
            }
        }
    }
}

impl SpanExporter for JsonlExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len();
        let result = match self.append(batch) {
            Ok(()) => {
                self.stats.written.fetch_add(spans, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                if let Ok(mut last) = self.stats.last_error.lock() {
                    *last = Some(e.clone());
                }
                Err(OTelSdkError::InternalFailure(e))
            }
        };
        std::future::ready(result)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = ResourceAttributesWithSchema::from(resource);
    }
}
