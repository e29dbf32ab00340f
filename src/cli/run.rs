//! The flags of `run` and `slurm`, and the one mapping between them and a [`RunConfig`]: built
//! once from the flags, and turned back into the `run` command line of each SLURM task.

use crate::bids::Filters;
use crate::engine::RunConfig;
use crate::engine::shard::Shard;
use crate::stages::{Stage, StageSettings};
use crate::telemetry::Protocol;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// A stage as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Brain extraction.
    SkullStrip,
    /// Bias-field correction.
    BiasCorrection,
    /// Intensity normalization.
    Normalization,
}

impl From<StageArg> for Stage {
    fn from(arg: StageArg) -> Self {
        match arg {
            StageArg::SkullStrip => Stage::SkullStrip,
            StageArg::BiasCorrection => Stage::BiasCorrection,
            StageArg::Normalization => Stage::Normalization,
        }
    }
}

/// The command-line spelling of `stage`.
fn stage_flag(stage: Stage) -> String {
    let arg = match stage {
        Stage::SkullStrip => StageArg::SkullStrip,
        Stage::BiasCorrection => StageArg::BiasCorrection,
        Stage::Normalization => StageArg::Normalization,
    };
    arg.to_possible_value()
        .map(|v| v.get_name().to_string())
        .expect("every stage has a flag value")
}

/// An OTLP protocol as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

impl From<ProtocolArg> for Protocol {
    fn from(arg: ProtocolArg) -> Self {
        match arg {
            ProtocolArg::Grpc => Protocol::Grpc,
            ProtocolArg::HttpProtobuf => Protocol::HttpProtobuf,
        }
    }
}

/// The BIDS-Apps analysis level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalysisLevel {
    /// Process each participant.
    Participant,
    /// Summaries across participants (not implemented).
    Group,
}

/// Output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Progress bar and a summary on stderr.
    Human,
    /// The plan (with --dry-run) or the run report as JSON on stdout.
    Json,
}

/// Arguments of `neuro-batch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Root of the input BIDS dataset.
    pub bids_dir: PathBuf,
    /// Where BIDS-Derivatives outputs go (created if missing).
    pub output_dir: PathBuf,
    /// Analysis level.
    #[arg(value_enum)]
    pub analysis_level: AnalysisLevel,
    /// Subjects to process, with or without "sub-" (default: all).
    #[arg(long, num_args = 1.., value_name = "LABEL")]
    pub participant_label: Vec<String>,
    /// Sessions to process, with or without "ses-" (default: all).
    #[arg(long, num_args = 1.., value_name = "LABEL")]
    pub session_label: Vec<String>,
    /// Image suffixes to process.
    #[arg(long, num_args = 1.., default_value = "T1w")]
    pub suffix: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Memory budget in GB for volumes in flight (default: 75 % of available memory).
    #[arg(long, value_name = "GB")]
    pub mem_gb: Option<f64>,
    /// Stages to run, comma-separated (default: all, in order).
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    pub stages: Vec<StageArg>,
    /// Stages to leave out, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    pub skip_stages: Vec<StageArg>,
    /// Redo inputs whose outputs already exist and match.
    #[arg(long)]
    pub overwrite: bool,
    /// Also write intermediate results: the estimated bias field (desc-biasfield).
    #[arg(long)]
    pub save_intermediates: bool,
    /// participants.tsv columns to record on every span of a subject as
    /// participant.<column> (e.g. site,age), so `analyze` can rank by them.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', num_args = 1..)]
    pub span_attr_from_participants: Vec<String>,
    /// Print what would be processed and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// gzip level of .nii.gz outputs (0-9).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// OTLP endpoint for traces and metrics; without a URL, the local stack of
    /// docker-compose.yml (http://localhost:4318, or :4317 with grpc)
    /// [default: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; none: traces go to the trace file].
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol [default: OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf].
    #[arg(long, value_enum)]
    pub otlp_protocol: Option<ProtocolArg>,
    /// Push the run's final metrics (files by outcome, step durations, run duration) to this
    /// Prometheus Pushgateway when the run ends, e.g. http://pushgateway:9091; a failed push
    /// is a warning [default: NEURO_BATCH_METRICS_PUSH].
    #[arg(long, value_name = "URL")]
    pub metrics_push: Option<String>,
    /// Write the local trace file (OTLP JSON lines, kept whatever else is configured) here
    /// [default: OUTPUT_DIR/logs/traces-<run-id>.jsonl].
    #[arg(long, value_name = "PATH")]
    pub trace_file: Option<PathBuf>,
    /// Write no local trace file (OTLP only, if configured); OTEL_TRACES_EXPORTER=none turns
    /// off all traces.
    #[arg(long, conflicts_with = "trace_file")]
    pub no_trace_file: bool,
    /// W3C traceparent of the batch this run belongs to; each subject trace links to it
    /// [default: the TRACEPARENT/TRACESTATE variables].
    #[arg(long, value_name = "TRACEPARENT")]
    pub traceparent: Option<String>,
    /// Process only shard I of N (0-based) of the label-sorted subjects
    /// [default: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX
    /// with --shard-count].
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Number of shards when the index comes from Kubernetes' JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shard_count: Option<u32>,
}

/// Arguments of `neuro-batch slurm`: the `run` arguments its tasks get, plus the job's.
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// What each task runs (everything `run` takes; --shard is set per task).
    #[command(flatten)]
    pub run: RunArgs,
    /// Number of array tasks (shards) [default: one per subject].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tasks: Option<u32>,
    /// Run at most K tasks at once (sbatch --array=...%K).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,
    /// Extra sbatch option, repeatable (e.g. --sbatch-arg=--partition=short).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Print the sbatch script (the default).
    #[arg(long, conflicts_with = "submit")]
    pub print: bool,
    /// Submit the job with sbatch.
    #[arg(long)]
    pub submit: bool,
    /// Wait for every task (sbatch --wait), then merge the shard reports into one summary.
    #[arg(long, requires = "submit")]
    pub wait: bool,
    /// What runs neuro-batch in each task, instead of this executable, as shell words: e.g.
    /// 'apptainer run --cleanenv -B /data neuro-batch.sif' to run the container image.
    #[arg(long, value_name = "COMMAND", value_parser = parse_launcher)]
    pub launcher: Option<Launcher>,
}

/// A command that runs neuro-batch (a container runtime and image), as words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher(pub Vec<String>);

/// Shell words, split as a shell would (quotes respected).
fn parse_launcher(text: &str) -> Result<Launcher, String> {
    match shlex::split(text) {
        Some(words) if !words.is_empty() => Ok(Launcher(words)),
        _ => Err(format!("{text:?} is not a command (unbalanced quotes?)")),
    }
}

impl RunArgs {
    /// The run these flags ask for. `env` supplies the array-task variables that choose a
    /// shard when `--shard` is not given (pass `|_| None` to ignore them).
    pub fn config(&self, env: impl Fn(&str) -> Option<String>) -> Result<RunConfig, String> {
        let mut stages: Vec<Stage> = if self.stages.is_empty() {
            Stage::ALL.to_vec()
        } else {
            self.stages.iter().map(|&s| s.into()).collect()
        };
        stages.retain(|s| !self.skip_stages.iter().any(|&k| Stage::from(k) == *s));
        stages.sort();
        stages.dedup();
        if let Some(gb) = self.mem_gb
            && !(gb.is_finite() && gb > 0.0)
        {
            return Err(format!("--mem-gb must be positive, got {gb}"));
        }
        let shard = match self.shard {
            Some(shard) => Some(shard),
            None => Shard::from_env(self.shard_count.map(|n| n as usize), env)?,
        };
        Ok(RunConfig {
            bids_dir: self.bids_dir.clone(),
            output_dir: std::path::absolute(&self.output_dir)
                .unwrap_or_else(|_| self.output_dir.clone()),
            filters: Filters {
                participants: self.participant_label.clone(),
                sessions: self.session_label.clone(),
                suffixes: self.suffix.clone(),
            },
            shard,
            stages,
            settings: StageSettings::default(),
            compression_level: self.compression_level,
            overwrite: self.overwrite,
            save_intermediates: self.save_intermediates,
            threads: self.threads.map(usize::from),
            mem_gb: self.mem_gb,
            participant_columns: self.span_attr_from_participants.clone(),
        })
    }
}

/// Where a task's traces and metrics go, as flags (`--otlp-*`); the trace file and batch
/// context come from each task's own run id and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFlags {
    /// `--otlp-endpoint` (empty: the local stack).
    pub otlp_endpoint: Option<String>,
    /// `--otlp-protocol`.
    pub otlp_protocol: Option<Protocol>,
    /// `--metrics-push`.
    pub metrics_push: Option<String>,
}

impl RunArgs {
    /// Where this run's traces and metrics go, as flags to pass on to array tasks.
    pub fn export(&self) -> ExportFlags {
        ExportFlags {
            otlp_endpoint: self.otlp_endpoint.clone(),
            otlp_protocol: self.otlp_protocol.map(Protocol::from),
            metrics_push: self.metrics_push.clone(),
        }
    }
}

/// The `neuro-batch run` command line that does what `config` says (without `--shard`, which
/// each array task adds): the inverse of [`RunArgs::config`], tested to be.
pub fn run_command_line(exe: &Path, config: &RunConfig, export: &ExportFlags) -> Vec<String> {
    let mut c: Vec<String> = vec![
        exe.display().to_string(),
        "run".into(),
        config.bids_dir.display().to_string(),
        config.output_dir.display().to_string(),
        "participant".into(),
    ];
    let mut list = |flag: &str, values: &[String]| {
        if !values.is_empty() {
            c.push(flag.into());
            c.extend(values.iter().cloned());
        }
    };
    let filters = &config.filters;
    list("--participant-label", &filters.participants);
    list("--session-label", &filters.sessions);
    list("--suffix", &filters.suffixes);
    if !config.participant_columns.is_empty() {
        c.extend([
            "--span-attr-from-participants".into(),
            config.participant_columns.join(","),
        ]);
    }
    if config.stages != Stage::ALL {
        let names: Vec<String> = config.stages.iter().map(|&s| stage_flag(s)).collect();
        c.extend(["--stages".into(), names.join(",")]);
    }
    if let Some(t) = config.threads {
        c.extend(["--threads".into(), t.to_string()]);
    }
    if let Some(gb) = config.mem_gb {
        c.extend(["--mem-gb".into(), gb.to_string()]);
    }
    if config.overwrite {
        c.push("--overwrite".into());
    }
    if config.save_intermediates {
        c.push("--save-intermediates".into());
    }
    c.extend([
        "--compression-level".into(),
        config.compression_level.to_string(),
    ]);
    if let Some(endpoint) = &export.otlp_endpoint {
        c.push(format!("--otlp-endpoint={endpoint}"));
    }
    if let Some(p) = export.otlp_protocol {
        c.extend(["--otlp-protocol".into(), p.as_str().into()]);
    }
    if let Some(url) = &export.metrics_push {
        c.push(format!("--metrics-push={url}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[String]) -> RunArgs {
        match Cli::try_parse_from(argv)
            .expect("the command line parses")
            .command
        {
            Command::Run(args) => args,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn the_task_command_line_parses_back_to_the_same_config() {
        let cases: [&[&str]; 4] = [
            &["run", "/d", "/o", "participant"],
            &[
                "run",
                "/d",
                "/o",
                "participant",
                "--participant-label",
                "01",
                "sub-02",
                "--session-label",
                "a",
                "--suffix",
                "T1w",
                "T2w",
                "--stages",
                "skull-strip,bias-correction",
                "--threads",
                "3",
                "--mem-gb",
                "2.5",
                "--overwrite",
                "--save-intermediates",
                "--compression-level",
                "6",
                "--span-attr-from-participants",
                "site,age",
            ],
            &[
                "run",
                "/d",
                "/o",
                "participant",
                "--skip-stages",
                "normalization",
            ],
            &[
                "run",
                "/d",
                "/o",
                "participant",
                "--otlp-endpoint",
                "--otlp-protocol",
                "grpc",
                "--metrics-push",
                "http://pushgateway:9091",
            ],
        ];
        for case in cases {
            let argv: Vec<String> = std::iter::once("neuro-batch")
                .chain(case.iter().copied())
                .map(str::to_string)
                .collect();
            let args = parse(&argv);
            let config = args.config(|_| None).unwrap();
            let line = run_command_line(Path::new("/bin/neuro-batch"), &config, &args.export());
            let again = parse(&line);
            assert_eq!(again.config(|_| None).unwrap(), config, "{line:?}");
            assert_eq!(again.otlp_endpoint, args.otlp_endpoint, "{line:?}");
            assert_eq!(again.otlp_protocol, args.otlp_protocol, "{line:?}");
            assert_eq!(again.metrics_push, args.metrics_push, "{line:?}");
        }
    }

    #[test]
    fn every_stage_has_its_flag_name() {
        assert_eq!(stage_flag(Stage::SkullStrip), "skull-strip");
        assert_eq!(stage_flag(Stage::BiasCorrection), "bias-correction");
        assert_eq!(stage_flag(Stage::Normalization), "normalization");
    }
}
