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
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// Appends span batches to a JSON-lines file.
#[derive(Debug)]
pub struct JsonlExporter {
    path: PathBuf,
    file: Mutex<Option<BufWriter<File>>>,
    resource: ResourceAttributesWithSchema,
}

impl JsonlExporter {
    /// An exporter that will append to `path` (parent directories are created on first use).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: Mutex::new(None),
            resource: ResourceAttributesWithSchema::from(&Resource::builder_empty().build()),
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
            *guard = Some(BufWriter::new(file));
        }
        let writer = guard.as_mut().expect("opened above");
        writer
            .write_all(&line)
            .and_then(|()| writer.flush())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

impl SpanExporter for JsonlExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let result = self.append(batch).map_err(OTelSdkError::InternalFailure);
        std::future::ready(result)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = ResourceAttributesWithSchema::from(resource);
    }
}
