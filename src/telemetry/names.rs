//! Span names and attribute keys: a stable API that dashboards, `analyze` and users' queries
//! depend on. Change them only with a major version.
//!
//! Trace shape (one trace per subject, no parent):
//!
//! ```text
//! process_subject                      bids.subject, bids.sessions, subject.file_count, batch.id,
//! │                                    run.threads, run.settings_digest
//! └── process_file                     file.*, bids.*
//!     ├── load_file                    array.*, io.bytes_read
//!     ├── process_image
//!     │   ├── skull_strip              skull_strip.* facts
//!     │   ├── bias_correction          bias_correction.* facts
//!     │   └── normalization            normalization.* facts
//!     └── write_output                 io.bytes_written
//! ```
//!
//! Every span below `process_subject` repeats `bids.subject`, `file.size_mb` and
//! `file.size_bucket`, so a search that returns only stage spans can still be ranked by them.

/// Default `service.name` (overridden by `OTEL_SERVICE_NAME`).
pub const SERVICE_NAME: &str = "neuro-batch";

/// Root span of a subject's trace.
pub const PROCESS_SUBJECT: &str = "process_subject";
/// One input file.
pub const PROCESS_FILE: &str = "process_file";
/// Reading and decoding the volume.
pub const LOAD_FILE: &str = "load_file";
/// Parent of the stage spans.
pub const PROCESS_IMAGE: &str = "process_image";
/// Writing the outputs and sidecars.
pub const WRITE_OUTPUT: &str = "write_output";
/// Stage span names (the stage's own name).
pub const STAGES: [&str; 3] = ["skull_strip", "bias_correction", "normalization"];

/// tracing's name for the load, stage and write spans; their OpenTelemetry name is the step's
/// (`otel.name`).
pub const STEP: &str = "step";
/// Root span of `neuro-batch slurm`: the submission, parent of every subject trace of the job.
pub const SLURM_BATCH: &str = "batch";

/// Every span name a run emits.
pub const ALL_SPANS: [&str; 8] = [
    PROCESS_SUBJECT,
    PROCESS_FILE,
    LOAD_FILE,
    PROCESS_IMAGE,
    STAGES[0],
    STAGES[1],
    STAGES[2],
    WRITE_OUTPUT,
];

/// OTLP counter: input files by outcome (label [`METRIC_LABEL_OUTCOME`]).
pub const METRIC_FILES: &str = "neuro_batch.files";
/// OTLP histogram, in ms: duration of each step (label [`METRIC_LABEL_STEP`]).
pub const METRIC_STEP_DURATION: &str = "neuro_batch.step.duration";
/// Unit of [`METRIC_STEP_DURATION`] (UCUM).
pub const METRIC_STEP_DURATION_UNIT: &str = "ms";
/// Label of [`METRIC_FILES`]: the file's outcome (`ok`, `failed`, `skipped`, `cancelled`).
pub const METRIC_LABEL_OUTCOME: &str = "outcome";
/// Label of [`METRIC_STEP_DURATION`]: the step's span name.
pub const METRIC_LABEL_STEP: &str = "step";
/// [`METRIC_FILES`] as Prometheus names it (OTLP receiver, or the Pushgateway push).
pub const PROM_FILES: &str = "neuro_batch_files_total";
/// [`METRIC_STEP_DURATION`] as Prometheus names it (the histogram's base name).
pub const PROM_STEP_DURATION: &str = "neuro_batch_step_duration_milliseconds";

/// The run id (also in the run report).
pub const BATCH_ID: &str = "batch.id";
/// Subject label, without `sub-`.
pub const BIDS_SUBJECT: &str = "bids.subject";
/// Session labels of the subject, comma-separated.
pub const BIDS_SESSIONS: &str = "bids.sessions";
/// Session label of the file.
pub const BIDS_SESSION: &str = "bids.session";
/// BIDS suffix, e.g. `T1w`.
pub const BIDS_SUFFIX: &str = "bids.suffix";
/// Number of input files of the subject.
pub const SUBJECT_FILE_COUNT: &str = "subject.file_count";
/// Absolute input path.
pub const FILE_PATH: &str = "file.path";
/// Input file name.
pub const FILE_NAME: &str = "file.name";
/// Input size on disk, bytes.
pub const FILE_SIZE_BYTES: &str = "file.size_bytes";
/// Input size on disk, MB (10^6 bytes), as a double.
pub const FILE_SIZE_MB: &str = "file.size_mb";
/// Low-cardinality size class: log2 MB buckets such as `4-8MB` (`<1MB` below 1 MB).
pub const FILE_SIZE_BUCKET: &str = "file.size_bucket";
/// `nifti` or `nifti-gz`.
pub const FILE_FORMAT: &str = "file.format";
/// Volume extents, e.g. `181x217x181`.
pub const ARRAY_SHAPE: &str = "array.shape";
/// Stored voxel type, e.g. `int16`.
pub const ARRAY_DTYPE: &str = "array.dtype";
/// Number of voxels.
pub const ARRAY_VOXELS: &str = "array.voxels";
/// Bytes read from disk (compressed size for `.nii.gz`).
pub const IO_BYTES_READ: &str = "io.bytes_read";
/// Bytes written to disk for all outputs of the file.
pub const IO_BYTES_WRITTEN: &str = "io.bytes_written";
/// CPU milliseconds of the thread that ran the step. Work that rayon hands to other threads
/// is not included, so with several threads this is a lower bound.
pub const THREAD_CPU_MS: &str = "thread.cpu_ms";
/// CPU milliseconds of every thread that worked for the step: its own plus its share of the
/// rayon helpers' (see [`crate::telemetry::cpu`]); exact with `--threads 1`. Other processes
/// on the machine do not move it, which is why `compare` gates on it.
pub const STEP_CPU_MS: &str = "step.cpu_ms";
/// `process_subject`: worker threads of the run (`compare` warns when two runs differ).
pub const RUN_THREADS: &str = "run.threads";
/// `process_subject`: digest of the stages, their parameters and the gzip level (not the
/// version: two builds with the same settings agree), for `compare`'s input check.
pub const RUN_SETTINGS_DIGEST: &str = "run.settings_digest";
/// `process_file`: SHA-256 of the input's first 64 KiB (its header and then some), the
/// content half of the resume fingerprint; `compare` warns when two runs' inputs differ.
pub const FILE_HEAD_SHA256: &str = "file.head_sha256";
/// Peak resident memory of the process so far, MB, recorded when a subject ends.
pub const PROCESS_PEAK_RSS_MB: &str = "process.peak_rss_mb";
/// Outcome of the file: `ok`, `failed`, `skipped`, `cancelled`.
pub const OUTCOME: &str = "neuro_batch.outcome";

/// `slurm` span: array tasks submitted.
pub const SLURM_TASKS: &str = "slurm.tasks";
/// `slurm` span: the job id sbatch gave.
pub const SLURM_JOB_ID: &str = "slurm.job_id";
/// Every span below `process_subject`: the scanner's maker (sidecar `Manufacturer`).
pub const SCANNER_MANUFACTURER: &str = "scanner.manufacturer";
/// Every span below `process_subject`: the scanner model (`ManufacturersModelName`).
pub const SCANNER_MODEL: &str = "scanner.model";
/// Every span below `process_subject`: field strength, tesla (`MagneticFieldStrength`).
pub const SCANNER_FIELD_STRENGTH_T: &str = "scanner.field_strength_t";
/// Every span below `process_subject`: the image matrix from the header, `181x217x181`.
pub const IMAGE_MATRIX: &str = "image.matrix";
/// Every span below `process_subject`: voxel size in mm from the header, `1x1x1.2`.
pub const IMAGE_VOXEL_MM: &str = "image.voxel_mm";
/// Every span below `process_subject`: the `acq` entity of the file name.
pub const BIDS_ACQ: &str = "bids.acq";
/// Every span below `process_subject`: the `run` entity of the file name.
pub const BIDS_RUN: &str = "bids.run";
/// Every span of a subject: `participant.<column>` for the `participants.tsv` columns of
/// `run --span-attr-from-participants` (numbers as doubles).
pub const PARTICIPANT_PREFIX: &str = "participant.";
/// `slurm` span: subjects in the job.
pub const BATCH_SUBJECT_COUNT: &str = "batch.subject_count";

/// Every span attribute key above (stage facts, `<stage>.<fact>`, come on top).
pub const ALL_ATTRIBUTES: [&str; 36] = [
    BATCH_ID,
    BIDS_SUBJECT,
    BIDS_SESSIONS,
    BIDS_SESSION,
    BIDS_SUFFIX,
    SUBJECT_FILE_COUNT,
    FILE_PATH,
    FILE_NAME,
    FILE_SIZE_BYTES,
    FILE_SIZE_MB,
    FILE_SIZE_BUCKET,
    FILE_FORMAT,
    ARRAY_SHAPE,
    ARRAY_DTYPE,
    ARRAY_VOXELS,
    IO_BYTES_READ,
    IO_BYTES_WRITTEN,
    THREAD_CPU_MS,
    STEP_CPU_MS,
    PROCESS_PEAK_RSS_MB,
    RUN_THREADS,
    RUN_SETTINGS_DIGEST,
    FILE_HEAD_SHA256,
    OUTCOME,
    SCANNER_MANUFACTURER,
    SCANNER_MODEL,
    SCANNER_FIELD_STRENGTH_T,
    IMAGE_MATRIX,
    IMAGE_VOXEL_MM,
    BIDS_ACQ,
    BIDS_RUN,
    "skull_strip.brain_volume_ml",
    "skull_strip.threshold",
    "bias_correction.field_min",
    "bias_correction.field_max",
    "normalization.high_value",
];

/// Event (OpenTelemetry semantic conventions): the error that failed the span.
pub const EVENT_EXCEPTION: &str = "exception";
/// `exception` event: the error's kind.
pub const EXCEPTION_TYPE: &str = "exception.type";
/// `exception` event: the error's message.
pub const EXCEPTION_MESSAGE: &str = "exception.message";

/// Event: a `.nii.gz` was fully decompressed.
pub const EVENT_DECOMPRESSED: &str = "decompressed";
/// Event: outputs were complete, the file was skipped (resume).
pub const EVENT_RESUME_SKIP: &str = "resume_skip";
/// Event: Ctrl-C abandoned the file.
pub const EVENT_CANCELLED: &str = "cancelled";

/// The low-cardinality size class of a file of `bytes` bytes: `<1MB`, `1-2MB`, `2-4MB`, ...
pub fn size_bucket(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb < 1.0 {
        return "<1MB".into();
    }
    let low = 1u64 << (mb.log2().floor() as u32);
    format!("{}-{}MB", low, low * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus 3's OTLP translation (`UnderscoreEscapingWithSuffixes`, the default): dots
    /// become underscores, the unit is appended in words, counters end in `_total`.
    fn prometheus_name(otlp: &str, unit: Option<&str>, counter: bool) -> String {
        let mut name = otlp.replace('.', "_");
        match unit {
            Some("ms") => name.push_str("_milliseconds"),
            Some(other) => panic!("add the unit {other}"),
            None => {}
        }
        if counter {
            name.push_str("_total");
        }
        name
    }

    #[test]
    fn prometheus_names_are_what_the_otlp_receiver_makes_of_the_instruments() {
        assert_eq!(prometheus_name(METRIC_FILES, None, true), PROM_FILES);
        assert_eq!(
            prometheus_name(METRIC_STEP_DURATION, Some(METRIC_STEP_DURATION_UNIT), false),
            PROM_STEP_DURATION
        );
    }

    #[test]
    fn buckets_are_log2_megabytes() {
        assert_eq!(size_bucket(0), "<1MB");
        assert_eq!(size_bucket(999_999), "<1MB");
        assert_eq!(size_bucket(1_000_000), "1-2MB");
        assert_eq!(size_bucket(5_500_000), "4-8MB");
        assert_eq!(size_bucket(64_000_000), "64-128MB");
    }
}
