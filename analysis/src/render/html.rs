//! One self-contained HTML page: the report's tables and SVG plots drawn with plotters
//! (duration against the attribute with the fitted slope, p50/p95 per bucket, critical-path
//! shares).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::sections::{sections, source_line};
use crate::rank::Finding;
use crate::report::Report;
use crate::table::{self, SpanTable, TableError, Values};

/// Why the page could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// Reading the points from the table.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Drawing.
    #[error("plot: {0}")]
    Plot(String),
}

fn plot_err<E: std::fmt::Debug>(e: E) -> HtmlError {
    HtmlError::Plot(format!("{e:?}"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}\
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}\
.note{color:#8a5a00}.foot{color:#666;font-size:.85rem}.plots{display:flex;flex-wrap:wrap;gap:1rem}";

/// The report as an HTML page; `table` supplies the points of the scatter plots.
pub fn page(report: &Report, table: &SpanTable, max_findings: usize) -> Result<String, HtmlError> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>neuro-batch analyze</title><style>{STYLE}</style></head><body>\n\
         <h1>neuro-batch analyze</h1>\n<p>{}</p>\n",
        escape(&source_line(report))
    );
    for note in &report.source.notes {
        out += &format!("<p class=\"note\">note: {}</p>\n", escape(note));
    }
    for s in sections(report, max_findings) {
        out += &format!("<h2>{}</h2>\n", escape(&s.title));
        if s.title == "What explains it" {
            out += &plots(report, table, max_findings.min(6))?;
        }
        if !s.rows.is_empty() {
            out += "<table><tr>";
            for h in &s.header {
                out += &format!("<th>{}</th>", escape(h));
            }
            out += "</tr>\n";
            for row in &s.rows {
                out += "<tr>";
                for cell in row {
                    if cell.starts_with("http://") || cell.starts_with("https://") {
                        out += &format!("<td><a href=\"{0}\">open</a></td>", escape(cell));
                    } else {
                        out += &format!("<td>{}</td>", escape(cell));
                    }
                }
                out += "</tr>\n";
            }
            out += "</table>\n";
        }
        if let Some(f) = &s.footer {
            out += &format!("<p class=\"foot\">{}</p>\n", escape(f));
        }
        if s.title == "Where the time goes" {
            out += &critical_path_plot(report)?;
        }
    }
    out += "</body></html>\n";
    Ok(out)
}

fn plots(report: &Report, table: &SpanTable, max: usize) -> Result<String, HtmlError> {
    let mut out = String::from("<div class=\"plots\">\n");
    for f in report
        .findings
        .iter()
        .filter(|f| f.significant && f.kind == "numeric")
        .take(max)
    {
        out += &scatter(f, table)?;
        out += &bucket_bars(f)?;
    }
    out += "</div>\n";
    Ok(out)
}

/// Duration against the attribute, with the least-squares line.
fn scatter(f: &Finding, table: &SpanTable) -> Result<String, HtmlError> {
    let rows = table.of_name(&f.span)?;
    let Values::Numeric(x) = rows.values(&f.attribute)? else {
        return Ok(String::new());
    };
    let y = rows.floats(table::DURATION_MS)?;
    let points: Vec<(f64, f64)> = x
        .into_iter()
        .zip(y)
        .filter_map(|(a, b)| Some((a?, b?)))
        .collect();
    if points.is_empty() {
        return Ok(String::new());
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    let (x0, x1) = bounds(&xs);
    let (_, y1) = bounds(&ys);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: duration vs {}", f.span, f.attribute),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, 0.0..y1 * 1.05)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(format!("{} {}", f.attribute, f.unit.trim()))
            .y_desc("duration (ms)")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 3, BLUE.mix(0.6).filled())),
            )
            .map_err(plot_err)?;
        if let Some(slope) = f.slope_ms_per_unit {
            let n = xs.len() as f64;
            let intercept = ys.iter().sum::<f64>() / n - slope * xs.iter().sum::<f64>() / n;
            chart
                .draw_series(LineSeries::new(
                    [x0, x1].map(|x| (x, intercept + slope * x)),
                    RED.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("{:+.3} ms per {}", slope, f.unit.trim()))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// p50 and p95 per bucket of the attribute.
fn bucket_bars(f: &Finding) -> Result<String, HtmlError> {
    let labels: Vec<String> = f.groups.iter().map(|g| g.label.clone()).collect();
    let top = f.groups.iter().map(|g| g.p95_ms).fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let n = labels.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: p50 / p95 per {} bucket", f.span, f.attribute),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..n as f64, 0.0..(top * 1.1).max(1e-3))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(format!("{} ({})", f.attribute, f.unit.trim()))
            .y_desc("ms")
            .draw()
            .map_err(plot_err)?;
        // Bucket names under their bars, placed in pixels (the axis labels of plotters fall on
        // round numbers, not on bar centres).
        let label_style = ("sans-serif", 12)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, label) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(label.clone(), (x, y + 4), label_style.clone()))
                .map_err(plot_err)?;
        }
        for (i, g) in f.groups.iter().enumerate() {
            let x = i as f64;
            chart
                .draw_series([
                    Rectangle::new(
                        [(x + 0.1, 0.0), (x + 0.5, g.p50_ms)],
                        BLUE.mix(0.7).filled(),
                    ),
                    Rectangle::new([(x + 0.5, 0.0), (x + 0.9, g.p95_ms)], RED.mix(0.6).filled()),
                ])
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Each span name's share of the critical path.
fn critical_path_plot(report: &Report) -> Result<String, HtmlError> {
    let shares: Vec<(&str, f64)> = report
        .spans
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.critical_path_share?)))
        .collect();
    if shares.is_empty() {
        return Ok(String::new());
    }
    let mut svg = String::new();
    {
        let height = 60 + 28 * shares.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (700, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let n = shares.len();
        let mut chart = ChartBuilder::on(&root)
            .caption("share of the critical path", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..100.0, 0.0..n as f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("% of the summed critical paths")
            .draw()
            .map_err(plot_err)?;
        let label_style = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (i, (name, share)) in shares.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            chart
                .draw_series([Rectangle::new(
                    [(0.0, y + 0.15), (share * 100.0, y + 0.85)],
                    GREEN.mix(0.7).filled(),
                )])
                .map_err(plot_err)?;
            let (px, py) = chart.backend_coord(&(0.0, y + 0.5));
            root.draw(&Text::new(
                format!("{name} {:.1} %", share * 100.0),
                (px - 6, py),
                label_style.clone(),
            ))
            .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn bounds(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi > lo {
        let pad = (hi - lo) * 0.03;
        (lo - pad, hi + pad)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}
