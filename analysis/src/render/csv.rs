//! The findings as CSV, one row per (span, attribute) tested.

use crate::report::Report;

/// Columns: span, attribute, kind, count, explained, rho, slope_ms_per_unit, unit, p, q,
/// significant, headline.
pub fn findings(report: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "span",
        "attribute",
        "kind",
        "count",
        "explained",
        "rho",
        "slope_ms_per_unit",
        "unit",
        "p",
        "q",
        "significant",
        "headline",
    ])?;
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for f in &report.findings {
        w.write_record([
            f.span.clone(),
            f.attribute.clone(),
            f.kind.as_str().to_owned(),
            f.count.to_string(),
            f.explained.to_string(),
            opt(f.rho),
            opt(f.slope_ms_per_unit),
            f.unit.clone(),
            f.p.to_string(),
            f.q.to_string(),
            f.significant.to_string(),
            f.headline.clone(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
