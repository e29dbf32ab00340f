//! `neuro-batch compare`: the CI performance gate.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use neuro_batch_analysis::compare::{self, CompareOptions, CompareReport, Metric};
use neuro_batch_analysis::source::{self, Source};
use neuro_batch_analysis::{SourceInfo, SpanTable, guards, render};

use super::analyze::FetchBar;
use super::{emit, source_failure};
use crate::cli::{CompareArgs, CompareFormat, CompareMetric};
use crate::error::{ExitCode, Failure};

pub(super) fn compare(args: CompareArgs) -> Result<ExitCode, Failure> {
    gate(args).map_err(|f| Failure::new(ExitCode::CompareError, f.error))
}

fn gate(args: CompareArgs) -> Result<ExitCode, Failure> {
    let (baseline, base_info) = side(&args.baseline, &args)?;
    let (candidate, cand_info) = side(&args.candidate, &args)?;
    let (baseline, candidate) = if args.spans.is_empty() {
        (baseline, candidate)
    } else {
        (
            only(&baseline, &args.spans)?,
            only(&candidate, &args.spans)?,
        )
    };
    let metric = metric(args.metric, &baseline, &candidate)?;
    let options = CompareOptions {
        metric,
        alpha: args.alpha,
        min_effect: args.min_effect,
        normalize_by: args.normalize_by.clone(),
        relative: !args.absolute,
        ..CompareOptions::default()
    };
    let warnings = warnings(&baseline, &candidate, [&base_info, &cand_info])?;
    let comparisons = compare::compare(&baseline, &candidate, &options)
        .map_err(|e| Failure::new(ExitCode::Software, e))?;
    if comparisons.spans.is_empty() {
        return Err(nothing_comparable(&comparisons));
    }
    eprintln!(
        "neuro-batch: comparing {} time{}",
        metric.as_str(),
        match (args.metric, metric) {
            (CompareMetric::Auto, Metric::Cpu) =>
                " (both runs have step.cpu_ms; --metric wall for wall time)",
            (CompareMetric::Auto, Metric::Wall) => " (a run has no CPU figures)",
            _ => "",
        }
    );
    let report = CompareReport::new(base_info, cand_info, &options, comparisons, warnings);
    let text = match args.format {
        CompareFormat::Table => render::compare_terminal(&report, 140),
        CompareFormat::Markdown => render::compare_markdown(&report),
        CompareFormat::Json => serde_json::to_string_pretty(&report).context("JSON")? + "\n",
    };
    emit(&text, None)?;
    if let Some(path) = &args.junit {
        let xml = render::compare_junit(&report).context("JUnit XML")?;
        emit(&xml, Some(path))?;
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        append(Path::new(&summary), &render::compare_markdown(&report))?;
    }
    Ok(exit_code(&report, args.fail_on_inconclusive))
}

/// What a side's source says about its completeness (lost spans, traces not fetched) and how
/// the two runs differ decide whether the verdict can be trusted: said where CI logs show it,
/// and kept for the report.
fn warnings(
    baseline: &SpanTable,
    candidate: &SpanTable,
    [base_info, cand_info]: [&SourceInfo; 2],
) -> Result<Vec<String>, Failure> {
    let mut warnings: Vec<String> = [("baseline", base_info), ("candidate", cand_info)]
        .into_iter()
        .flat_map(|(name, info)| info.notes.iter().map(move |n| format!("{name}: {n}")))
        .collect();
    warnings.extend(
        guards::differences(baseline, candidate)
            .map_err(|e| Failure::new(ExitCode::Software, e))?,
    );
    for w in &warnings {
        eprintln!("neuro-batch: warning: {w}");
    }
    Ok(warnings)
}

/// No span name both runs have could be compared: say why for each.
fn nothing_comparable(comparisons: &compare::Comparisons) -> Failure {
    let why: Vec<String> = comparisons
        .not_compared
        .iter()
        .map(|n| format!("{}: {}", n.span, n.reason))
        .collect();
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join("; "))
    };
    Failure::new(
        ExitCode::NoInputs,
        anyhow!("the two runs have no span name in common that can be compared{why}"),
    )
}

/// 1 for a regression (or, with `--fail-on-inconclusive`, an inconclusive span or a run shift
/// beyond the minimum effect), else 0; those are warnings either way.
fn exit_code(report: &CompareReport, fail_on_inconclusive: bool) -> ExitCode {
    let shifted = report
        .run_shift
        .as_ref()
        .is_some_and(|s| s.is_beyond_minimum());
    if !report.inconclusive.is_empty() {
        eprintln!(
            "neuro-batch: warning: inconclusive: {} (more subjects or replicates would decide{})",
            report.inconclusive.join(", "),
            if fail_on_inconclusive {
                ""
            } else {
                "; --fail-on-inconclusive makes this exit 1"
            }
        );
    }
    let undecided = !report.inconclusive.is_empty() || shifted;
    if !report.regressions.is_empty() || (fail_on_inconclusive && undecided) {
        ExitCode::SomeFailed
    } else {
        ExitCode::Success
    }
}

/// The metric asked for; `auto` is CPU when both runs have CPU figures.
fn metric(
    asked: CompareMetric,
    baseline: &SpanTable,
    candidate: &SpanTable,
) -> Result<Metric, Failure> {
    let available = Metric::available(baseline, candidate);
    match asked {
        CompareMetric::Auto => Ok(available),
        CompareMetric::Wall => Ok(Metric::Wall),
        CompareMetric::Cpu if available == Metric::Cpu => Ok(Metric::Cpu),
        CompareMetric::Cpu => Err(Failure::new(
            ExitCode::CompareError,
            anyhow!("--metric cpu: a run has no CPU figures (step.cpu_ms); use --metric wall"),
        )),
    }
}

/// One side: a saved span table, the local store, or a batch id in Tempo.
fn side(spec: &str, args: &CompareArgs) -> Result<(SpanTable, SourceInfo), Failure> {
    let path = Path::new(spec);
    let tool = |e: anyhow::Error| Failure::new(ExitCode::CompareError, e);
    if path.is_file() && SpanTable::is_saved(path) {
        let table = SpanTable::load(path).map_err(|e| tool(e.into()))?;
        let traces = table.roots().map_err(|e| tool(e.into()))?.len();
        let info = SourceInfo {
            kind: "table".into(),
            detail: path.display().to_string(),
            spans: table.len(),
            traces,
            ..SourceInfo::default()
        };
        return Ok((table, info));
    }
    let source = if path.exists() {
        Source::Store {
            paths: vec![path.to_path_buf()],
            all_runs: false,
        }
    } else if let Some(server) = args.tempo.server() {
        Source::Tempo(server, Box::new(args.window.search(Some(spec))))
    } else {
        return Err(tool(anyhow!(
            "{spec}: no such file or directory (a batch id needs --tempo)"
        )));
    };
    let (table, mut info) =
        source::load_table(&source, &FetchBar::default()).map_err(source_failure)?;
    info.spans = table.len();
    Ok((table, info))
}

/// The rows of the named spans only.
fn only(table: &SpanTable, names: &[String]) -> Result<SpanTable, Failure> {
    table
        .of_names(names)
        .map_err(|e| Failure::new(ExitCode::Software, e))
}

fn append(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot append to GITHUB_STEP_SUMMARY {}", path.display()))
        .map_err(|e| Failure::new(ExitCode::CompareError, e))
}
