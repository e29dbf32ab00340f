//! Processing one subject: each file is loaded, run through the enabled stages and written.
//! A failing file is recorded and its outputs removed; the subject's other files go on.
//!
//! Each subject is one trace (see [`crate::telemetry::names`] for its shape): spans carry the
//! file's attributes, the stage facts, CPU time, and on failure status ERROR with an
//! `exception` event, propagated to `process_file` and `process_subject`.

use super::RunConfig;
use super::cancel::CancelToken;
use super::plan::{FileJob, SubjectJob};
use super::report::{FileRecord, FileStatus, Outputs, StepRecord, SubjectRecord};
use super::scheduler::panic_message;
use crate::derivatives::sidecar::{
    self, BiasFieldSidecar, MaskSidecar, PreprocSidecar, StepFacts, source_uri,
};
use crate::stages::grid::{into_flat, to_array};
use crate::stages::{
    Fact, Facts, Grid, Stage, StageError, bias_correction, normalization, skull_strip,
};
use crate::telemetry::cpu::PoolCpu;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::{names, usage};
use crate::volume::{self, HeaderInfo, Volume, VolumeError};
use nifti::NiftiHeader;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, Status};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Processes subjects: shared, read-only state for every worker.
pub struct Processor<'a> {
    /// What to compute.
    pub config: &'a RunConfig,
    /// Set by Ctrl-C: stop between steps.
    pub cancel: &'a CancelToken,
    /// Ticks once per finished file.
    pub progress: &'a indicatif::ProgressBar,
    /// The run id (`batch.id`).
    pub batch_id: &'a str,
    /// The batch this run belongs to: every subject trace links to it.
    pub batch_link: Option<&'a SpanContext>,
    /// OTLP instruments (no-ops without an endpoint).
    pub metrics: &'a Metrics,
    /// Bytes one file may need ([`RunConfig::memory_budget_bytes`]).
    pub memory_budget: u64,
    /// The pool's CPU clocks, for `step.cpu_ms`.
    pub cpu: &'a PoolCpu,
    /// [`names::RUN_SETTINGS_DIGEST`] of this run.
    pub settings_digest: &'a str,
}

/// Why a file failed.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("{path}: {source}")]
    Stage { path: PathBuf, source: StageError },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: needs about {:.1} GB to process, more than the memory budget of {:.1} GB \
         (raise --mem-gb if the machine has the memory)",
        *needed as f64 / 1e9,
        *budget as f64 / 1e9
    )]
    OverBudget {
        path: PathBuf,
        needed: u64,
        budget: u64,
    },
    #[error("{path}: internal error in {step}: {message}")]
    Internal {
        path: PathBuf,
        step: &'static str,
        message: String,
    },
    #[error("cancelled")]
    Cancelled,
}

impl FileError {
    /// The `exception.type` recorded on the failing span.
    fn kind(&self) -> &'static str {
        match self {
            FileError::Volume(e) => e.kind(),
            FileError::Stage { .. } => "StageError",
            FileError::Io { .. } => "IoError",
            FileError::Internal { .. } => "InternalError",
            FileError::OverBudget { .. } => "OverBudget",
            FileError::Cancelled => "Cancelled",
        }
    }
}

/// Attributes every span below `process_subject` repeats.
struct FileAttributes(Vec<KeyValue>);

/// `participant.<column>` attributes of a subject: numbers as doubles, the rest as text.
fn participant_attributes(values: &[(String, String)]) -> Vec<KeyValue> {
    values
        .iter()
        .map(|(column, value)| {
            let key = format!("{}{column}", names::PARTICIPANT_PREFIX);
            match value.parse::<f64>() {
                Ok(n) if n.is_finite() => KeyValue::new(key, n),
                _ => KeyValue::new(key, value.clone()),
            }
        })
        .collect()
}

impl FileAttributes {
    fn of(job: &FileJob, participant: &[(String, String)]) -> Self {
        // The planner's fingerprint already holds the size; stat only without one.
        let bytes = match &job.provenance {
            Some(p) => p.input_fingerprint.size_bytes,
            None => std::fs::metadata(&job.input.path).map_or(0, |m| m.len()),
        };
        let mut attributes = participant_attributes(participant);
        attributes.extend([
            KeyValue::new(names::BIDS_SUBJECT, job.input.subject.clone()),
            KeyValue::new(names::FILE_SIZE_MB, bytes as f64 / 1e6),
            KeyValue::new(names::FILE_SIZE_BUCKET, names::size_bucket(bytes)),
            KeyValue::new(names::FILE_SIZE_BYTES, bytes as i64),
        ]);
        // What varies in a real study besides the size: the scanner, the protocol.
        let scan = &job.acquisition;
        let text = [
            (names::SCANNER_MANUFACTURER, scan.manufacturer.clone()),
            (names::SCANNER_MODEL, scan.model.clone()),
            (
                names::BIDS_ACQ,
                job.input.name.get("acq").map(str::to_owned),
            ),
            (
                names::BIDS_RUN,
                job.input.name.get("run").map(str::to_owned),
            ),
        ];
        for (key, value) in text {
            if let Some(value) = value {
                attributes.push(KeyValue::new(key, value));
            }
        }
        if let Some(t) = scan.field_strength_t {
            attributes.push(KeyValue::new(names::SCANNER_FIELD_STRENGTH_T, t));
        }
        if let Some((matrix, voxel)) = job.geometry {
            let [x, y, z] = matrix;
            attributes.push(KeyValue::new(names::IMAGE_MATRIX, format!("{x}x{y}x{z}")));
            let mm = voxel.map(|v| {
                format!("{:.2}", v)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_owned()
            });
            attributes.push(KeyValue::new(names::IMAGE_VOXEL_MM, mm.join("x")));
        }
        Self(attributes)
    }

    fn apply(&self, span: &Span) {
        for kv in &self.0 {
            span.set_attribute(kv.key.clone(), kv.value.clone());
        }
    }
}

impl Processor<'_> {
    /// Process every file of `job`, in order, as one trace.
    pub fn subject(&self, job: &SubjectJob) -> SubjectRecord {
        let start = Instant::now();
        let span =
            tracing::info_span!(parent: None, names::PROCESS_SUBJECT, bids.subject = %job.label);
        span.set_attribute(names::BIDS_SESSIONS, job.sessions.join(","));
        span.set_attribute(names::SUBJECT_FILE_COUNT, job.files.len() as i64);
        span.set_attribute(names::BATCH_ID, self.batch_id.to_string());
        span.set_attribute(names::RUN_THREADS, self.config.thread_count() as i64);
        span.set_attribute(names::RUN_SETTINGS_DIGEST, self.settings_digest.to_string());
        for kv in participant_attributes(&job.participant) {
            span.set_attribute(kv.key, kv.value);
        }
        if let Some(link) = self.batch_link {
            span.add_link(link.clone());
        }
        let files: Vec<FileRecord> = span.in_scope(|| {
            job.files
                .iter()
                .map(|f| self.file(f, &job.participant))
                .collect()
        });
        span.set_attribute(names::PROCESS_PEAK_RSS_MB, usage::peak_rss_mb());
        let failed = files
            .iter()
            .filter(|f| f.status == FileStatus::Failed)
            .count();
        if failed > 0 {
            span.set_status(Status::error(format!(
                "{failed} of {} files failed",
                files.len()
            )));
        } else {
            span.set_status(Status::Ok);
        }
        let status = subject_status(&files);
        let duration_s = start.elapsed().as_secs_f64();
        // In the subject's span, so the line carries its trace id.
        span.in_scope(|| {
            tracing::info!(
                subject = %job.label,
                status,
                files = files.len(),
                duration_s = format!("{duration_s:.1}"),
                "subject finished"
            );
        });
        SubjectRecord {
            subject: job.label.clone(),
            sessions: job.sessions.clone(),
            duration_ms: ms(start),
            files,
        }
    }

    /// One input in its `process_file` span: skipped when done, else loaded, processed and
    /// written; a failure removes whatever outputs it left.
    fn file(&self, job: &FileJob, participant: &[(String, String)]) -> FileRecord {
        let start = Instant::now();
        let span = tracing::info_span!(names::PROCESS_FILE, file.name = %job.input.name);
        let attrs = FileAttributes::of(job, participant);
        attrs.apply(&span);
        annotate_file(&span, job);
        let _entered = span.enter();

        let mut record = FileRecord {
            input: job.input.relative.clone(),
            subject: job.input.subject.clone(),
            session: job.input.session.clone(),
            status: FileStatus::Ok,
            duration_ms: 0.0,
            steps: Vec::new(),
            outputs: Outputs::None,
            error: None,
        };
        if job.complete && !self.config.overwrite {
            tracing::info!(input = %job.input.relative.display(), "outputs complete: skipping");
            span.add_event(names::EVENT_RESUME_SKIP, vec![]);
            record.status = FileStatus::Skipped;
        } else {
            let mut steps = Steps {
                processor: self,
                path: &job.input.path,
                attrs: &attrs,
                records: Vec::new(),
            };
            match steps.run(job) {
                Ok(outputs) => record.outputs = outputs,
                Err(FileError::Cancelled) => {
                    span.add_event(names::EVENT_CANCELLED, vec![]);
                    record.status = FileStatus::Cancelled;
                }
                Err(e) => {
                    tracing::error!("{e}");
                    record.status = FileStatus::Failed;
                    record.error = Some(e.to_string());
                }
            }
            record.steps = steps.records;
            // Kept until the report is written: no spare capacity per input.
            record.steps.shrink_to_fit();
            if record.status != FileStatus::Ok {
                remove_outputs(job, &self.config.output_dir);
            }
        }
        let outcome = record.status.name();
        span.set_attribute(names::OUTCOME, outcome);
        match &record.error {
            Some(e) => span.set_status(Status::error(e.clone())),
            None if record.status != FileStatus::Cancelled => span.set_status(Status::Ok),
            None => {}
        }
        self.metrics.file_done(outcome);
        record.duration_ms = ms(start);
        self.progress.inc(1);
        record
    }
}

/// One word for a subject: `failed` if any file failed, else `cancelled` if any was, else
/// `skipped` if all were, else `ok`.
fn subject_status(files: &[FileRecord]) -> &'static str {
    let any = |status: FileStatus| files.iter().any(|f| f.status == status);
    if any(FileStatus::Failed) {
        "failed"
    } else if any(FileStatus::Cancelled) {
        "cancelled"
    } else if !files.is_empty() && files.iter().all(|f| f.status == FileStatus::Skipped) {
        "skipped"
    } else {
        "ok"
    }
}

/// The `process_file` attributes that only that span carries.
fn annotate_file(span: &Span, job: &FileJob) {
    let name = &job.input.name;
    span.set_attribute(names::FILE_PATH, job.input.path.display().to_string());
    span.set_attribute(
        names::FILE_FORMAT,
        if name.extension.ends_with(".gz") {
            "nifti-gz"
        } else {
            "nifti"
        },
    );
    span.set_attribute(names::BIDS_SUFFIX, name.suffix.clone());
    if let Some(p) = &job.provenance {
        span.set_attribute(
            names::FILE_HEAD_SHA256,
            p.input_fingerprint.head_sha256.clone(),
        );
    }
    if let Some(session) = &job.input.session {
        span.set_attribute(names::BIDS_SESSION, session.clone());
    }
}

/// The steps of one file (load, each stage, write), each in its own span, with their records.
struct Steps<'a> {
    processor: &'a Processor<'a>,
    /// The input file.
    path: &'a Path,
    attrs: &'a FileAttributes,
    records: Vec<StepRecord>,
}

impl Steps<'_> {
    /// Load, process and write `job`; the output paths on success.
    fn run(&mut self, job: &FileJob) -> Result<Outputs, FileError> {
        let path = &job.input.path;
        let budget = self.processor.memory_budget;
        let (volume, info) = self.step(names::LOAD_FILE, |span| {
            // The header's claim, checked before a byte of voxels is allocated.
            if job.estimated_bytes > budget {
                return Err(FileError::OverBudget {
                    path: path.clone(),
                    needed: job.estimated_bytes,
                    budget,
                });
            }
            let (v, info) = volume::read_volume(path)?;
            annotate_load(span, &info);
            let facts: Facts = vec![
                ("voxels", Fact::Int(info.voxels() as i64)),
                ("non_finite_voxels", Fact::Int(v.non_finite_voxels as i64)),
            ];
            Ok(((v, info), facts))
        })?;
        let parent = Span::current();
        parent.set_attribute(names::ARRAY_SHAPE, shape(&info));
        parent.set_attribute(names::ARRAY_VOXELS, info.voxels() as i64);
        let grid = Grid::new(volume.dims(), volume.spacing_mm);
        // The voxels move into the stages; only the header is needed afterwards.
        let Volume { data, header, .. } = volume;
        let image = into_flat(data);

        let image_span = tracing::info_span!(names::PROCESS_IMAGE);
        self.attrs.apply(&image_span);
        let processed = image_span.in_scope(|| self.stages(path, image, &grid));
        let processed = match processed {
            Ok(p) => {
                image_span.set_status(Status::Ok);
                p
            }
            Err(e) => {
                image_span.set_status(Status::error(e.to_string()));
                return Err(e);
            }
        };

        let facts = step_facts(&self.records);
        let config = self.processor.config;
        self.step(names::WRITE_OUTPUT, |span| {
            let bytes = write_outputs(job, config, &header, &grid, processed, facts)?;
            span.set_attribute(names::IO_BYTES_WRITTEN, bytes as i64);
            Ok((
                Outputs::Planned(Arc::clone(&job.outputs)),
                vec![("bytes_written", Fact::Int(bytes as i64))],
            ))
        })
    }

    /// The enabled stages, in order, on the flat `image` of the file at `path`.
    fn stages(
        &mut self,
        path: &Path,
        image: Vec<f32>,
        grid: &Grid,
    ) -> Result<Processed, FileError> {
        let config = self.processor.config;
        let settings = &config.settings;
        let stage_err = |source| FileError::Stage {
            path: path.to_path_buf(),
            source,
        };
        let brain = if config.runs(Stage::SkullStrip) {
            Some(self.step(Stage::SkullStrip.name(), |_| {
                let out =
                    skull_strip::strip(&image, grid, &settings.skull_strip).map_err(stage_err)?;
                Ok((out.mask, out.facts))
            })?)
        } else {
            None
        };
        let head;
        let working_mask: &[u8] = match &brain {
            Some(mask) => mask,
            None => {
                head = skull_strip::head_mask(&image, grid, &settings.skull_strip)
                    .map_err(stage_err)?;
                &head
            }
        };
        let mut current = image;
        let mut field = None;
        if config.runs(Stage::BiasCorrection) {
            field = Some(self.step(Stage::BiasCorrection.name(), |_| {
                let out = bias_correction::correct(
                    &mut current,
                    working_mask,
                    grid,
                    &settings.bias_correction,
                );
                Ok((out.field, out.facts))
            })?);
        }
        if config.runs(Stage::Normalization) {
            self.step(Stage::Normalization.name(), |_| {
                let out =
                    normalization::normalize(&mut current, working_mask, &settings.normalization);
                Ok(((), out.facts))
            })?;
        }
        if let Some(mask) = &brain {
            current.iter_mut().zip(mask).for_each(|(v, &m)| {
                if m == 0 {
                    *v = 0.0;
                }
            });
        }
        Ok(Processed {
            preproc: current,
            brain,
            field,
        })
    }

    /// Run one named step in its own span: time it, record its facts and CPU time, and on
    /// failure mark the span ERROR with an `exception` event. Stops first if cancelled.
    fn step<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&Span) -> Result<(T, Facts), FileError>,
    ) -> Result<T, FileError> {
        if self.processor.cancel.is_cancelled() {
            return Err(FileError::Cancelled);
        }
        let span = tracing::info_span!(names::STEP, otel.name = name);
        self.attrs.apply(&span);
        let _entered = span.enter();
        let (start, cpu) = (Instant::now(), self.processor.cpu.begin());
        // A bug in a step fails this file, named, not the subject or the batch.
        let result =
            std::panic::catch_unwind(AssertUnwindSafe(|| f(&span))).unwrap_or_else(|payload| {
                Err(FileError::Internal {
                    path: self.path.to_path_buf(),
                    step: name,
                    message: panic_message(payload.as_ref()),
                })
            });
        let cpu = cpu.finish();
        span.set_attribute(names::THREAD_CPU_MS, cpu.thread_ms);
        span.set_attribute(names::STEP_CPU_MS, cpu.step_ms);
        let duration_ms = ms(start);
        self.processor.metrics.step(name, duration_ms);
        match result {
            Ok((value, facts)) => {
                for (key, fact) in &facts {
                    let key = format!("{name}.{key}");
                    match fact {
                        Fact::Float(v) => span.set_attribute(key, *v),
                        Fact::Int(v) => span.set_attribute(key, *v),
                    }
                }
                span.set_status(Status::Ok);
                self.records.push(StepRecord {
                    name: name.into(),
                    duration_ms,
                    facts: facts.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                });
                Ok(value)
            }
            Err(e) => {
                record_exception(&span, &e);
                Err(e)
            }
        }
    }
}

/// Status ERROR with an `exception` event carrying the error's type and message.
fn record_exception(span: &Span, e: &FileError) {
    let message = e.to_string();
    span.add_event(
        names::EVENT_EXCEPTION,
        vec![
            KeyValue::new(names::EXCEPTION_TYPE, e.kind()),
            KeyValue::new(names::EXCEPTION_MESSAGE, message.clone()),
        ],
    );
    span.set_status(Status::error(message));
}

fn shape(info: &HeaderInfo) -> String {
    let [x, y, z] = info.dims;
    format!("{x}x{y}x{z}")
}

fn annotate_load(span: &Span, info: &HeaderInfo) {
    span.set_attribute(names::ARRAY_SHAPE, shape(info));
    span.set_attribute(names::ARRAY_DTYPE, info.dtype_name());
    span.set_attribute(names::ARRAY_VOXELS, info.voxels() as i64);
    span.set_attribute(names::IO_BYTES_READ, info.file_size as i64);
    if info.compressed {
        span.add_event(
            names::EVENT_DECOMPRESSED,
            vec![KeyValue::new(
                "bytes",
                (info.vox_offset + info.data_bytes) as i64,
            )],
        );
    }
}

/// The facts of the steps so far, per step, for the preproc sidecar.
fn step_facts(steps: &[StepRecord]) -> StepFacts {
    steps
        .iter()
        .map(|s| {
            let facts = s.facts.iter().map(|(k, v)| (k.to_string(), v.clone()));
            (s.name.to_string(), facts.collect())
        })
        .collect()
}

/// What the stages produced for one volume (flat, x-fastest).
struct Processed {
    /// The preprocessed image.
    preproc: Vec<f32>,
    /// The brain mask, when skull stripping ran.
    brain: Option<Vec<u8>>,
    /// The estimated multiplicative bias field, when bias correction ran.
    field: Option<Vec<f32>>,
}

/// Write images, then sidecars; the preproc sidecar goes last because it marks completion.
fn write_outputs(
    job: &FileJob,
    config: &RunConfig,
    input_header: &NiftiHeader,
    grid: &Grid,
    processed: Processed,
    facts: StepFacts,
) -> Result<u64, FileError> {
    let Processed {
        preproc,
        brain,
        field,
    } = processed;
    let paths = &job.outputs;
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| FileError::Io { path, source }
    };
    std::fs::create_dir_all(&paths.dir).map_err(io(&paths.dir))?;
    let level = config.compression_level;
    let header = volume::derived_header(input_header);
    let mut bytes =
        volume::write_image(&paths.preproc(), &header, &to_array(grid, preproc), level)?;
    let source = source_uri(&job.input);
    if let (Some(mask), Some((mask_path, mask_sidecar))) = (brain, paths.mask()) {
        bytes += volume::write_image(&mask_path, &header, &to_array(grid, mask), level)?;
        sidecar::write(&mask_sidecar, &MaskSidecar::brain(&source)).map_err(io(&mask_sidecar))?;
    }
    if let (Some(field), Some((field_path, field_sidecar))) = (field, paths.bias_field()) {
        bytes += volume::write_image(&field_path, &header, &to_array(grid, field), level)?;
        sidecar::write(&field_sidecar, &BiasFieldSidecar::new(&source))
            .map_err(io(&field_sidecar))?;
    }
    let preproc_sidecar = PreprocSidecar::new(
        &source,
        &config.stages,
        &config.settings,
        facts,
        job.provenance.as_ref(),
    );
    let preproc_sidecar_path = paths.preproc_sidecar();
    sidecar::write(&preproc_sidecar_path, &preproc_sidecar).map_err(io(&preproc_sidecar_path))?;
    Ok(bytes)
}

/// Removes the outputs of a file that did not finish, and the folders left empty by that
/// (up to, not including, OUTPUT_DIR).
fn remove_outputs(job: &FileJob, out_root: &Path) {
    for path in job.outputs.all() {
        let _ = std::fs::remove_file(path);
    }
    let mut dir = job.outputs.dir.as_path();
    while dir != out_root && dir.starts_with(out_root) && std::fs::remove_dir(dir).is_ok() {
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
