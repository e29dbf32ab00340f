//! One self-contained HTML page: the report's tables and SVG plots drawn with plotters
//! (duration against the attribute with the fitted slope, p50/p95 per bucket, critical-path
//! shares).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::sections::{sections, source_line};
use crate::rank::{self, Finding, Kind};
use crate::report::Report;
use crate::table::{SpanTable, TableError};

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
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}td:last-child{white-space:nowrap}\
.note{color:#8a5a00}.headline{font-size:1.1rem}.foot{color:#666;font-size:.85rem}.plots{display:flex;flex-wrap:wrap;gap:1rem}";

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
    out += &format!(
        "<p class=\"headline\"><strong>{}</strong></p>\n",
        escape(&report.headline)
    );
    // What explains the time first, then the tables behind it, then the plots.
    for s in sections(report, max_findings) {
        out += &format!("<h2>{}</h2>\n", escape(&s.title));
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
    }
    out += "<h2>Plots</h2>\n";
    out += &plots(report, table, max_findings.min(6))?;
    out += &critical_path_plot(report)?;
    out += "</body></html>\n";
    Ok(out)
}

fn plots(report: &Report, table: &SpanTable, max: usize) -> Result<String, HtmlError> {
    let mut out = String::from("<div class=\"plots\">\n");
    for f in report
        .findings
        .iter()
        .filter(|f| f.significant && f.kind == Kind::Numeric)
        .take(max)
    {
        out += &scatter(f, table)?;
        out += &bucket_bars(f)?;
    }
    out += "</div>\n";
    Ok(out)
}

/// Text size in the plots. plotters' SVG writes 0.806 × this as the font size in pixels, so
/// 15 is 12.1 px at 100 % zoom, the least that reads comfortably.
const TEXT: f64 = 15.0;
/// Plot titles (14.5 px).
const CAPTION: f64 = 18.0;

/// Duration against the attribute, with the least-squares line: the points and the line the
/// finding was computed from ([`rank::points`]).
fn scatter(f: &Finding, table: &SpanTable) -> Result<String, HtmlError> {
    let Some(points) = rank::points(table, &f.span, &f.attribute)? else {
        return Ok(String::new());
    };
    if points.x.is_empty() {
        return Ok(String::new());
    }
    let (x0, x1) = bounds(&points.x);
    let (_, y1) = bounds(&points.y);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: duration vs {}", f.span, f.attribute),
                ("sans-serif", CAPTION),
            )
            .margin(10)
            .x_label_area_size(42)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, 0.0..y1 * 1.05)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(axis_label(f))
            .y_desc("duration (ms)")
            .label_style(("sans-serif", TEXT))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(
                points
                    .x
                    .iter()
                    .zip(&points.y)
                    .map(|(&x, &y)| Circle::new((x, y), 3, BLUE.mix(0.6).filled())),
            )
            .map_err(plot_err)?;
        if let Some((intercept, slope)) = points.line() {
            chart
                .draw_series(LineSeries::new(
                    [x0, x1].map(|x| (x, intercept + slope * x)),
                    RED.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!(
                    "{:+.3} ms per {}",
                    slope,
                    if f.unit.trim().is_empty() {
                        "unit"
                    } else {
                        f.unit.trim()
                    }
                ))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", TEXT))
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
                ("sans-serif", CAPTION),
            )
            .margin(10)
            .x_label_area_size(56)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..n as f64, 0.0..(top * 1.1).max(1e-3))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(axis_label(f))
            .y_desc("ms")
            .label_style(("sans-serif", TEXT))
            .y_label_formatter(&tick)
            .draw()
            .map_err(plot_err)?;
        // Bucket names under their bars, placed in pixels (the axis labels of plotters fall on
        // round numbers, not on bar centres).
        let label_style = ("sans-serif", TEXT)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, label) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            // Many buckets: alternate two rows, so long labels (`0.0312-0.0625`) don't overlap.
            let row = if n > 4 { (i % 2) as i32 * 16 } else { 0 };
            root.draw(&Text::new(
                label.clone(),
                (x, y + 4 + row),
                label_style.clone(),
            ))
            .map_err(plot_err)?;
        }
        let bars = |left: f64, value: fn(&crate::rank::Group) -> f64, color: RGBAColor| {
            f.groups.iter().enumerate().map(move |(i, g)| {
                let x = i as f64 + left;
                Rectangle::new([(x, 0.0), (x + 0.4, value(g))], color.filled())
            })
        };
        let (p50, p95) = (BLUE.mix(0.7), RED.mix(0.6));
        chart
            .draw_series(bars(0.1, |g| g.p50_ms, p50))
            .map_err(plot_err)?
            .label("p50")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], p50.filled()));
        chart
            .draw_series(bars(0.5, |g| g.p95_ms, p95))
            .map_err(plot_err)?
            .label("p95")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], p95.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", TEXT))
            .draw()
            .map_err(plot_err)?;
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
            .caption("share of the critical path", ("sans-serif", CAPTION))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..100.0, 0.0..n as f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("% of the summed critical paths")
            .label_style(("sans-serif", TEXT))
            .draw()
            .map_err(plot_err)?;
        let label_style = ("sans-serif", TEXT)
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

/// An axis tick without spurious decimals: `5000`, `2.5`, `0.125`.
fn tick(v: &f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// `file.size_mb (MB)`, or the key alone when it names no unit.
fn axis_label(f: &Finding) -> String {
    if f.unit.is_empty() {
        f.attribute.clone()
    } else {
        format!("{} ({})", f.attribute, f.unit)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceInfo;
    use crate::rank::RankOptions;
    use crate::report::{self, ReportOptions};
    use crate::span::{AttrValue, Span, Status};

    /// `read` spans whose duration grows with the bytes read (40 ms per MB), and failed ones
    /// that read far more and took far longer.
    fn spans() -> Vec<Span> {
        (0..36)
            .map(|i| {
                let failed = i >= 30;
                let mb = if failed { 900.0 } else { f64::from(i + 1) };
                let ms = if failed { 90_000.0 } else { 5.0 + 40.0 * mb };
                Span {
                    trace_id: format!("{i:032x}"),
                    span_id: format!("{i:016x}"),
                    parent_id: None,
                    name: "read".into(),
                    service: "neuro-batch".into(),
                    start_ns: 0,
                    end_ns: (ms * 1e6) as i64,
                    status: if failed { Status::Error } else { Status::Ok },
                    error_message: failed.then(|| "boom".into()),
                    attributes: [(
                        "io.bytes_read".to_owned(),
                        AttrValue::Int((mb * 1e6) as i64),
                    )]
                    .into(),
                }
            })
            .collect()
    }

    #[test]
    fn the_scatter_shows_the_points_the_finding_was_computed_from() {
        let table = SpanTable::build(spans()).unwrap();
        let options = ReportOptions {
            rank: RankOptions::default(),
            label_attribute: "bids.subject".into(),
            grafana: None,
            slowest: 3,
        };
        let report = report::build(&table, SourceInfo::default(), &options).unwrap();
        let finding = &report.findings[0];
        assert_eq!(finding.attribute, "io.bytes_read");
        assert!((finding.slope_ms_per_unit.unwrap() - 40.0).abs() < 1e-6);

        let svg = scatter(finding, &table).unwrap();
        // One circle per successful span: the failed ones are not part of the finding.
        assert_eq!(svg.matches("<circle").count(), 30, "{svg}");
        // The x axis is in MB (ticks up to 30), not in bytes.
        assert!(svg.contains("io.bytes_read (MB)"), "{svg}");
        assert!(!svg.contains("000000<"), "x ticks in bytes: {svg}");

        // The page leads with what explains the time; the plots come after every table.
        let page = page(&report, &table, 10).unwrap();
        let findings = page.find("What explains it").unwrap();
        let first_plot = page.find("<svg").unwrap();
        assert!(findings < first_plot && page.find("Where the time goes").unwrap() < first_plot);
        assert!(
            page.contains(">p95<") && page.contains(">p50<"),
            "bar legend"
        );
        // Every piece of plot text is at least 12 px at 100 % zoom.
        let sizes: Vec<f64> = page
            .split("font-size=\"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
            .collect();
        assert!(!sizes.is_empty());
        assert!(
            sizes.iter().all(|&px| px >= 12.0),
            "plot text below 12 px: {sizes:?}"
        );
        assert_eq!(tick(&5000.0), "5000");
        assert_eq!(tick(&2.5), "2.5");

        let points = rank::points(&table, "read", "io.bytes_read")
            .unwrap()
            .unwrap();
        let (intercept, slope) = points.line().unwrap();
        assert!((intercept - 5.0).abs() < 1e-6 && (slope - 40.0).abs() < 1e-9);
    }
}
