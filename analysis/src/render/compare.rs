//! A comparison as terminal table, Markdown and JUnit XML.

use comfy_table::{ContentArrangement, Table, presets};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::compare::{CompareReport, Verdict};

fn rows(report: &CompareReport) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "span",
        "n base/cand",
        "median base",
        "median cand",
        "median ratio [bootstrap CI]",
        "typical ratio [HL CI]",
        "q",
        "verdict",
    ];
    let rows = report
        .spans
        .iter()
        .map(|s| {
            vec![
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
                match s.verdict {
                    Verdict::NotEnoughData => format!("not enough data (need {})", s.needed_n),
                    v => v.as_str().to_owned(),
                },
            ]
        })
        .collect();
    (header, rows)
}

fn headline(report: &CompareReport) -> String {
    let mut line = match report.regressions.len() {
        0 => "no regression".to_owned(),
        n => format!("{n} regression(s): {}", report.regressions.join(", ")),
    };
    line += &format!(
        " (alpha {}, minimum effect {:.0} %{})",
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
    format!(
        "neuro-batch compare\nbaseline:  {}\ncandidate: {}\n{t}\n{}\n",
        report.baseline.detail,
        report.candidate.detail,
        headline(report)
    )
}

/// GitHub-flavoured Markdown (what goes into `$GITHUB_STEP_SUMMARY`).
pub fn markdown(report: &CompareReport) -> String {
    let (header, rows) = rows(report);
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN).set_header(header);
    for r in rows {
        t.add_row(r);
    }
    let mark = if report.regressions.is_empty() {
        "✅"
    } else {
        "❌"
    };
    format!(
        "## neuro-batch performance: {mark} {}\n\nbaseline: `{}`  \ncandidate: `{}`\n\n{t}\n",
        headline(report),
        report.baseline.detail,
        report.candidate.detail
    )
}

/// JUnit XML: one test case per span name; a regression is a failure, too little data a skip.
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
            Verdict::NotEnoughData => {
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
