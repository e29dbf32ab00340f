//! Processing one subject: each file is loaded, run through the enabled stages and written.
//! A failing file is recorded and its outputs removed; the subject's other files go on.

use super::RunConfig;
use super::plan::{FileJob, SubjectJob};
use super::report::{FileRecord, FileStatus, StepRecord, SubjectRecord};
use crate::derivatives::{source_uri, write_json_atomic};
use crate::stages::grid::{flat, to_array};
use crate::stages::{Facts, Grid, Stage, StageError, bias_field, normalize, skull_strip};
use crate::volume::{self, Volume, VolumeError};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Shared, read-only state for processing.
pub struct Context<'a> {
    /// What to compute.
    pub config: &'a RunConfig,
    /// Set by Ctrl-C: stop between steps.
    pub cancel: &'a AtomicBool,
    /// Ticks once per finished file.
    pub progress: &'a indicatif::ProgressBar,
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
    #[error("cancelled")]
    Cancelled,
}

/// Process every file of `job`, in order.
pub fn process_subject(job: &SubjectJob, ctx: &Context) -> SubjectRecord {
    let start = Instant::now();
    let span = tracing::info_span!(parent: None, "process_subject", bids.subject = %job.label);
    let _entered = span.enter();
    let files = job.files.iter().map(|f| process_file(f, ctx)).collect();
    SubjectRecord {
        subject: job.label.clone(),
        sessions: job.sessions.clone(),
        duration_ms: ms(start),
        files,
    }
}

fn process_file(job: &FileJob, ctx: &Context) -> FileRecord {
    let start = Instant::now();
    let _span =
        tracing::info_span!("process_file", file.path = %job.input.path.display()).entered();
    let mut record = FileRecord {
        input: job.input.relative.clone(),
        subject: job.input.subject.clone(),
        session: job.input.session.clone(),
        status: FileStatus::Ok,
        duration_ms: 0.0,
        steps: Vec::new(),
        outputs: Vec::new(),
        error: None,
    };
    if job.complete && !ctx.config.overwrite {
        tracing::info!(input = %job.input.relative.display(), "outputs complete: skipping");
        record.status = FileStatus::Skipped;
    } else {
        match run_file(job, ctx, &mut record.steps) {
            Ok(outputs) => record.outputs = outputs,
            Err(FileError::Cancelled) => record.status = FileStatus::Cancelled,
            Err(e) => {
                tracing::error!("{e}");
                record.status = FileStatus::Failed;
                record.error = Some(e.to_string());
            }
        }
        if record.status != FileStatus::Ok {
            remove_outputs(job);
        }
    }
    record.duration_ms = ms(start);
    ctx.progress.inc(1);
    record
}

fn run_file(
    job: &FileJob,
    ctx: &Context,
    steps: &mut Vec<StepRecord>,
) -> Result<Vec<PathBuf>, FileError> {
    let config = ctx.config;
    let path = &job.input.path;
    let stage_err = |source| FileError::Stage {
        path: path.clone(),
        source,
    };

    let (volume, info) = step(steps, "load_file", ctx, || {
        let (v, info) = volume::read_volume(path)?;
        let facts: Facts = vec![
            ("voxels", crate::stages::Fact::Int(info.voxels() as i64)),
            (
                "non_finite_voxels",
                crate::stages::Fact::Int(v.non_finite_voxels as i64),
            ),
        ];
        Ok(((v, info), facts))
    })?;
    let grid = Grid::new(volume.dims(), volume.spacing_mm);
    let image = flat(&volume.data).into_owned();

    let brain = if config.runs(Stage::SkullStrip) {
        Some(step(steps, Stage::SkullStrip.name(), ctx, || {
            let out =
                skull_strip::run(&image, &grid, &config.settings.skull_strip).map_err(stage_err)?;
            Ok((out.mask, out.facts))
        })?)
    } else {
        None
    };
    let working_mask = match &brain {
        Some(mask) => mask.clone(),
        None => skull_strip::head_mask(&image, &grid, &config.settings.skull_strip)
            .map_err(stage_err)?,
    };

    let mut current = image;
    if config.runs(Stage::BiasCorrection) {
        current = step(steps, Stage::BiasCorrection.name(), ctx, || {
            let out = bias_field::run(
                &current,
                &working_mask,
                &grid,
                &config.settings.bias_correction,
            );
            Ok((out.corrected, out.facts))
        })?;
    }
    if config.runs(Stage::Normalization) {
        current = step(steps, Stage::Normalization.name(), ctx, || {
            let out = normalize::run(&current, &working_mask, &config.settings.normalization);
            Ok((out.normalized, out.facts))
        })?;
    }
    if let Some(mask) = &brain {
        current.iter_mut().zip(mask).for_each(|(v, &m)| {
            if m == 0 {
                *v = 0.0;
            }
        });
    }

    let facts = steps_facts(steps);
    step(steps, "write_output", ctx, || {
        let bytes = write_outputs(job, config, &volume, &grid, current, brain, facts)?;
        Ok((
            job.outputs.all().iter().map(|p| p.to_path_buf()).collect(),
            vec![("bytes_written", crate::stages::Fact::Int(bytes as i64))],
        ))
    })
    .inspect(|_| tracing::debug!(shape = ?info.dims, "written"))
}

/// Run one named step, timing it and recording its facts; stop first if cancelled.
fn step<T>(
    steps: &mut Vec<StepRecord>,
    name: &'static str,
    ctx: &Context,
    f: impl FnOnce() -> Result<(T, Facts), FileError>,
) -> Result<T, FileError> {
    if ctx.cancel.load(Ordering::SeqCst) {
        return Err(FileError::Cancelled);
    }
    let _span = tracing::info_span!("step", name).entered();
    let start = Instant::now();
    let (value, facts) = f()?;
    steps.push(StepRecord {
        name,
        duration_ms: ms(start),
        facts,
    });
    Ok(value)
}

fn steps_facts(steps: &[StepRecord]) -> serde_json::Value {
    steps
        .iter()
        .map(|s| {
            let facts: serde_json::Map<String, serde_json::Value> = s
                .facts
                .iter()
                .map(|(k, v)| ((*k).to_string(), serde_json::to_value(v).expect("fact")))
                .collect();
            (s.name.to_string(), serde_json::Value::Object(facts))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Write images, then sidecars; the preproc sidecar goes last because it marks completion.
fn write_outputs(
    job: &FileJob,
    config: &RunConfig,
    volume: &Volume,
    grid: &Grid,
    preproc: Vec<f32>,
    brain: Option<Vec<u8>>,
    facts: serde_json::Value,
) -> Result<u64, FileError> {
    let paths = &job.outputs;
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| FileError::Io { path, source }
    };
    std::fs::create_dir_all(&paths.dir).map_err(io(&paths.dir))?;
    let level = config.compression_level;
    let header = volume::derived_header(&volume.header);
    let mut bytes = volume::write_image(&paths.preproc, &header, &to_array(grid, preproc), level)?;
    let source = source_uri(&job.input);
    if let (Some(mask), Some((mask_path, mask_sidecar))) = (brain, &paths.mask) {
        bytes += volume::write_image(mask_path, &header, &to_array(grid, mask), level)?;
        let sidecar = json!({
            "Description": "Brain mask from neuro-batch skull_strip",
            "Type": "Brain",
            "Sources": [source],
            "SpatialReference": source,
        });
        write_json_atomic(mask_sidecar, &sidecar).map_err(io(mask_sidecar))?;
    }
    let stage_names: Vec<&str> = config.stages.iter().map(|s| s.name()).collect();
    let sidecar = json!({
        "Description": format!("Preprocessed by neuro-batch: {}", stage_names.join(", ")),
        "SkullStripped": config.runs(Stage::SkullStrip),
        "Sources": [source],
        "SpatialReference": source,
        "NeuroBatch": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Stages": stage_names,
            "Parameters": config.settings,
            "Facts": facts,
            "InputFingerprint": job.provenance.as_ref().map(|p| &p.input_fingerprint),
            "SettingsDigest": job.provenance.as_ref().map(|p| &p.settings_digest),
        },
    });
    write_json_atomic(&paths.preproc_sidecar, &sidecar).map_err(io(&paths.preproc_sidecar))?;
    Ok(bytes)
}

/// Remove whatever outputs of `job` exist, so a failed input leaves nothing behind.
fn remove_outputs(job: &FileJob) {
    for path in job.outputs.all() {
        let _ = std::fs::remove_file(path);
    }
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
