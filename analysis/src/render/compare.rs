//! A comparison as terminal table, Markdown and JUnit XML.

use comfy_table::{ContentArrangement, Table, presets};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::compare::{CompareReport, Metric, SpanComparison, Verdict};

fn rows(report: &CompareReport) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let cpu = report.metric == Metric::Cpu;
    let mut header = vec![
        "span",
        "n base/cand",
        "median base",
        "median cand",
        "median ratio [bootstrap CI]",
        "typical ratio [HL CI]",
        "q",
        "verdict",
    ];
    if cpu {
        header.push("wall: typical ratio [HL CI]");
    }
    let rows = report
        .spans
        .iter()
        .map(|s| {
            let mut row = vec![
                s.span.clone(),
                format!("{}/{}", s.baseline_n, s.candidate_n),
                format!("{:.3} {}", s.baseline_median, s.unit),
                format!("{:.3} {}", s.candidate_median, s.unit),
                match s.ratio_ci {
                    Some((lo, hi)) => format!("×{:.3} [{lo:.3}, {hi:.3}]", s.ratio),
                    None => format!("×{:.3}", s.ratio),
                },
                match (s.hl_ratio, s.hl_ratio_ci) {
                    (Some(r), Some((lo, hi))) => format!("×{r:.3} [{lo:.3}, {hi:.3}]"),
                    _ => "–".into(),
                },
                s.q.map_or_else(|| "–".into(), |q| format!("{q:.1e}")),
                verdict_cell(s),
            ];
            if cpu {
                row.push(match s.wall {
                    Some(w) => match (w.hl_ratio, w.hl_ratio_ci) {
                        (Some(r), Some((lo, hi))) => {
                            format!("×{r:.3} [{lo:.3}, {hi:.3}] {}", w.verdict.as_str())
                        }
                        _ => w.verdict.as_str().to_owned(),
                    },
                    None => "–".into(),
                });
            }
            row
        })
        .collect();
    (header, rows)
}

fn verdict_cell(s: &SpanComparison) -> String {
    match s.verdict {
        Verdict::NotEnoughData => format!("not enough data (need {})", s.needed_n),
        Verdict::Inconclusive if s.needed_n == usize::MAX => "⚠ inconclusive".to_owned(),
        Verdict::Inconclusive => format!("⚠ inconclusive (~{} per side)", s.needed_n),
        v => v.as_str().to_owned(),
    }
}

/// Lines under the table: what was not compared, inconclusive spans, warnings.
fn notes(report: &CompareReport) -> Vec<String> {
    let mut out: Vec<String> = report
        .not_compared
        .iter()
        .map(|n| format!("not compared: {}: {}", n.span, n.reason))
        .collect();
    if !report.inconclusive.is_empty() {
        out.push(format!(
            "⚠ inconclusive: {}: the intervals can neither show nor rule out a change of {:.0} %; \
             run more subjects (or replicates) on both sides",
            report.inconclusive.join(", "),
            report.min_effect * 100.0
        ));
    }
    // Beyond the minimum effect the shift is a warning already.
    if let Some(shift) = report.run_shift.as_ref().filter(|s| !s.is_beyond_minimum()) {
        out.push(format!("run shift: {}", shift.summary()));
    }
    out.extend(report.warnings.iter().map(|w| format!("⚠ {w}")));
    out
}

fn headline(report: &CompareReport) -> String {
    let mut line = match (report.regressions.len(), report.inconclusive.len()) {
        (0, 0) => "no regression".to_owned(),
        (0, n) => format!("no regression shown, {n} inconclusive"),
        (r, _) => format!("{r} regression(s): {}", report.regressions.join(", ")),
    };
    let metric = match report.metric {
        Metric::Cpu => "CPU time",
        Metric::Wall => "wall time",
    };
    line += &format!(
        " ({metric}, alpha {}, minimum effect {:.0} %{})",
        report.alpha,
        report.min_effect * 100.0,
        report
            .normalize_by
            .as_ref()
            .map_or_else(String::new, |k| format!(", per {k}"))
    );
    line
}

/// Terminal table.
pub fn terminal(report: &CompareReport, width: u16) -> String {
    let (header, rows) = rows(report);
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(header);
    for r in rows {
        t.add_row(r);
    }
    let mut out = format!(
        "neuro-batch compare\nbaseline:  {}\ncandidate: {}\n{t}\n{}\n",
        report.baseline.detail,
        report.candidate.detail,
        headline(report)
    );
    for line in notes(report) {
        out += &line;
        out.push('\n');
    }
    out
}

/// GitHub-flavoured Markdown (what goes into `$GITHUB_STEP_SUMMARY`).
pub fn markdown(report: &CompareReport) -> String {
    let (header, rows) = rows(report);
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN).set_header(header);
    for r in rows {
        t.add_row(r);
    }
    // A green tick only when every span was decided and nothing about the runs is doubtful.
    let mark = if !report.regressions.is_empty() {
        "❌"
    } else if report.inconclusive.is_empty() && report.warnings.is_empty() {
        "✅"
    } else {
        "⚠️"
    };
    let mut out = format!(
        "## neuro-batch performance: {mark} {}\n\nbaseline: `{}`  \ncandidate: `{}`\n\n{t}\n",
        headline(report),
        report.baseline.detail,
        report.candidate.detail
    );
    let notes = notes(report);
    if !notes.is_empty() {
        out.push('\n');
        for line in notes {
            out += &format!("- {line}\n");
        }
    }
    out
}

/// JUnit XML: one test case per span name; a regression is a failure, too little data or an
/// inconclusive interval a skip with the reason.
pub fn junit(report: &CompareReport) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new("neuro-batch performance");
    for s in &report.spans {
        let status = match s.verdict {
            Verdict::Regression => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(s.summary.clone())
                    .set_type("performance regression");
                st
            }
            Verdict::NotEnoughData | Verdict::Inconclusive => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(s.summary.clone());
                st
            }
            Verdict::NoChange | Verdict::Improvement => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(s.span.clone(), status);
        case.set_classname("neuro-batch.compare")
            .set_system_out(s.summary.clone());
        suite.add_test_case(case);
    }
    let mut r = Report::new("neuro-batch compare");
    r.add_test_suite(suite);
    r.to_string()
}
