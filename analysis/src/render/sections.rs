//! The report as titled tables of text: one layout, drawn by the terminal, Markdown and HTML
//! renderers.

use crate::report::Report;
use crate::units::fmt_ms;

/// Which part of the report a section shows (renderers add their plots by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Per span name: counts and percentiles.
    Spans,
    /// Significant attribute findings.
    Findings,
    /// Wall time against CPU time per step.
    Waiting,
    /// The slowest traces.
    Slowest,
    /// Failed traces.
    Failures,
}

/// A titled table.
pub struct Section {
    /// What it shows.
    pub part: Part,
    /// Heading.
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
    /// A line under the table (legend, what was left out).
    pub footer: Option<String>,
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// The sections of a report, in reading order; empty sections are left out.
pub fn sections(report: &Report, max_findings: usize) -> Vec<Section> {
    [
        Some(findings(report, max_findings)),
        waiting(report),
        Some(spans(report)),
        slowest(report),
        failures(report),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn spans(report: &Report) -> Section {
    Section {
        part: Part::Spans,
        title: "Where the time goes".into(),
        header: [
            "span",
            "count",
            "errors",
            "p50",
            "p90",
            "p95",
            "p99",
            "max",
            "of traces",
            "critical path",
        ]
        .map(String::from)
        .into(),
        rows: report
            .spans
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.count.to_string(),
                    s.errors.to_string(),
                    fmt_ms(s.p50_ms),
                    fmt_ms(s.p90_ms),
                    fmt_ms(s.p95_ms),
                    fmt_ms(s.p99_ms),
                    fmt_ms(s.max_ms),
                    pct(s.share_of_traces),
                    pct(s.critical_path_share),
                ]
            })
            .collect(),
        footer: Some(
            "of traces: summed duration over the summed root durations (nested spans overlap); \
             critical path: the span's own share of the traces' critical paths (sums to 100 %)"
                .into(),
        ),
    }
}

fn findings(report: &Report, max_findings: usize) -> Section {
    let significant: Vec<_> = report.findings.iter().filter(|f| f.significant).collect();
    let shown = significant.len().min(max_findings);
    let left_out = report.findings.len() - shown;
    Section {
        part: Part::Findings,
        title: "What explains it".into(),
        header: ["#", "finding", "n", "q"].map(String::from).into(),
        rows: significant
            .iter()
            .take(shown)
            .enumerate()
            .map(|(i, f)| {
                let mut text = f.headline.clone();
                if !f.collinear.is_empty() {
                    text += &format!(" [same cause: {}]", f.collinear.join(", "));
                }
                vec![
                    (i + 1).to_string(),
                    text,
                    f.count.to_string(),
                    format!("{:.1e}", f.q),
                ]
            })
            .collect(),
        footer: Some(if shown == 0 {
            format!(
                "no attribute explains a span's duration significantly ({} tested){}",
                report.findings.len(),
                if report.findings.is_empty() {
                    "; ranking needs enough spans per name (--min-count)"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "Spearman ρ² for numbers, Kruskal-Wallis ε² for categories; q: Benjamini-Hochberg \
                 over {} tests. {left_out} more in --format json.",
                report.findings.len()
            )
        }),
    }
}

fn waiting(report: &Report) -> Option<Section> {
    (!report.waiting.is_empty()).then(|| Section {
        part: Part::Waiting,
        title: "Waiting or working".into(),
        header: ["step", "wall", "CPU", "waiting", "waited longest"]
            .map(String::from)
            .into(),
        rows: report
            .waiting
            .iter()
            .map(|w| {
                let mark = if w.mostly_waiting { " ⚠" } else { "" };
                vec![
                    w.span.clone(),
                    fmt_ms(w.wall_ms),
                    fmt_ms(w.cpu_ms),
                    format!("{:.0} %{mark}", w.waiting_share * 100.0),
                    w.worst
                        .iter()
                        .map(|t| {
                            let who = t.label.clone().unwrap_or_else(|| t.trace_id[..8].into());
                            format!("{who} {}", fmt_ms(t.waiting_ms))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect(),
        footer: Some(format!(
            "waiting: wall time not spent computing (I/O, sync, locks, other work on the cores), \
             from each step's CPU time; ⚠ at {:.0} % or more{}",
            crate::waiting::MOSTLY_WAITING * 100.0,
            report
                .waiting
                .iter()
                .filter(|w| w.mostly_waiting)
                .map(|w| format!("\n{}", w.headline))
                .collect::<String>()
        )),
    })
}

fn slowest(report: &Report) -> Option<Section> {
    if report.slowest.is_empty() {
        return None;
    }
    let with_links = report.slowest.iter().any(|t| t.link.is_some());
    let mut header: Vec<String> = [
        "trace",
        "duration",
        "status",
        "critical path mostly",
        "trace id",
    ]
    .map(String::from)
    .into();
    if with_links {
        header.push("link".into());
    }
    Some(Section {
        part: Part::Slowest,
        title: "Slowest traces".into(),
        header,
        rows: report
            .slowest
            .iter()
            .map(|t| {
                let mut row = vec![
                    t.label.clone().unwrap_or_else(|| t.root.clone()),
                    fmt_ms(t.duration_ms),
                    t.status.clone(),
                    t.critical_span
                        .as_ref()
                        .map_or_else(|| "–".into(), |(n, ms)| format!("{n} ({})", fmt_ms(*ms))),
                    t.trace_id.clone(),
                ];
                if with_links {
                    row.push(t.link.clone().unwrap_or_default());
                }
                row
            })
            .collect(),
        footer: None,
    })
}

fn failures(report: &Report) -> Option<Section> {
    if report.failures.is_empty() {
        return None;
    }
    Some(Section {
        part: Part::Failures,
        title: format!("Failures ({})", report.failures.len()),
        header: ["trace", "span", "message", "trace id"]
            .map(String::from)
            .into(),
        rows: report
            .failures
            .iter()
            .map(|f| {
                vec![
                    f.label.clone().unwrap_or_else(|| "–".into()),
                    f.span.clone(),
                    f.message.clone().unwrap_or_default(),
                    f.trace_id.clone(),
                ]
            })
            .collect(),
        footer: None,
    })
}

/// The one-line source description.
pub fn source_line(report: &Report) -> String {
    let s = &report.source;
    format!(
        "{} {}: {} traces, {} spans",
        s.kind, s.detail, s.traces, s.spans
    )
}
