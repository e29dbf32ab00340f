//! One trace: its spans in tree order with their start offsets, durations, self and
//! critical-path times ([`trace_rows`], the JSON form), drawn as a terminal waterfall
//! ([`waterfall`]): indented names, a bar on a shared time axis, a mark on the spans the
//! critical path runs through, the status and a few key attributes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::critical_path;
use crate::span::{AttrValue, Span, Status, Tree};
use crate::units::fmt_ms;

/// Marks a span that is on the critical path itself (not only through its children).
const CRITICAL_MARK: char = '◆';

/// One span of a trace, in tree order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceRow {
    /// Span id.
    pub span_id: String,
    /// Parent span id; `null` for a root.
    pub parent_id: Option<String>,
    /// Span name.
    pub name: String,
    /// Depth in the tree (roots 0).
    pub depth: usize,
    /// Start, ms after the trace's first start.
    pub start_offset_ms: f64,
    /// Duration, ms.
    pub duration_ms: f64,
    /// Duration not covered by children, ms.
    pub self_ms: Option<f64>,
    /// Time this span itself spends on the trace's critical path, ms.
    pub critical_ms: Option<f64>,
    /// `unset`, `ok` or `error`.
    pub status: &'static str,
    /// The error message, when failed.
    pub error: Option<String>,
    /// The span's own attributes.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// The spans of one trace in depth-first order, children by start time.
pub fn trace_rows(spans: &[Span]) -> Vec<TraceRow> {
    let Some(t0) = spans.iter().map(|s| s.start_ns).min() else {
        return Vec::new();
    };
    let tree = Tree::of(spans);
    let times = critical_path::analyze_trace(spans, &tree);
    let Tree {
        mut children,
        mut roots,
    } = tree;
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].start_ns, spans[i].end_ns));
    by_start(&mut roots);
    children.iter_mut().for_each(by_start);
    let mut rows = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    let mut seen = vec![false; spans.len()];
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let s = &spans[i];
        let t = times.as_ref().map(|t| t.spans[i]);
        rows.push(TraceRow {
            span_id: s.span_id.clone(),
            parent_id: s.parent_id.clone(),
            name: s.name.clone(),
            depth,
            start_offset_ms: (s.start_ns - t0) as f64 / 1e6,
            duration_ms: s.duration_ms(),
            self_ms: t.map(|t| t.self_ns as f64 / 1e6),
            critical_ms: t.map(|t| t.critical_ns as f64 / 1e6),
            status: s.status.as_str(),
            error: (s.status == Status::Error).then(|| s.error_message.clone().unwrap_or_default()),
            attributes: s.attributes.clone(),
        });
        stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
    }
    rows
}

/// Draws the trace; `width` is the bar area in columns; `keys` are attributes shown on a row
/// when the span's value differs from its parent's (so a file's name shows once, on the span
/// that introduces it).
pub fn waterfall(spans: &[Span], width: usize, keys: &[&str]) -> String {
    let rows = trace_rows(spans);
    let Some(total_ms) = rows
        .iter()
        .map(|r| r.start_offset_ms + r.duration_ms)
        .max_by(f64::total_cmp)
    else {
        return "no spans\n".into();
    };
    let total_ms = total_ms.max(1e-6);
    let label = |r: &TraceRow| format!("{}{}", "  ".repeat(r.depth), r.name);
    let name_width = rows
        .iter()
        .map(|r| label(r).chars().count())
        .max()
        .unwrap_or(0);
    let by_id: BTreeMap<&str, &TraceRow> = rows.iter().map(|r| (r.span_id.as_str(), r)).collect();

    let mut out = format!(
        "trace {}  {}  {} spans  ({CRITICAL_MARK} on the critical path)\n",
        spans[0].trace_id,
        fmt_ms(total_ms),
        spans.len()
    );
    for r in &rows {
        let from = ((r.start_offset_ms / total_ms) * width as f64).floor() as usize;
        let to = (((r.start_offset_ms + r.duration_ms) / total_ms) * width as f64).ceil() as usize;
        let to = to.clamp(from + 1, width.max(from + 1));
        let bar: String = (0..width)
            .map(|c| if c >= from && c < to { '█' } else { '·' })
            .collect();
        let mark = if r.critical_ms.is_some_and(|c| c > 0.0) {
            CRITICAL_MARK
        } else {
            ' '
        };
        let parent = r.parent_id.as_deref().and_then(|p| by_id.get(p));
        let shown: Vec<String> = keys
            .iter()
            .filter_map(|&k| {
                let v = r.attributes.get(k)?;
                let inherited = parent.and_then(|p| p.attributes.get(k)) == Some(v);
                (!inherited).then(|| format!("{k}={v}"))
            })
            .collect();
        let mut line = format!(
            "{:<name_width$}  +{:<9} {bar}  {:>9} {mark}",
            label(r),
            fmt_ms(r.start_offset_ms),
            fmt_ms(r.duration_ms)
        );
        if let Some(e) = &r.error {
            line += &format!(" ERROR {e}");
        }
        if !shown.is_empty() {
            line += &format!("  {}", shown.join(" "));
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(id: &str, parent: Option<&str>, start: i64, end: i64, status: Status) -> Span {
        Span {
            trace_id: "ab".repeat(16),
            span_id: id.into(),
            parent_id: parent.map(Into::into),
            name: id.into(),
            service: String::new(),
            start_ns: start,
            end_ns: end,
            status,
            error_message: (status == Status::Error).then(|| "boom".into()),
            attributes: Default::default(),
        }
    }

    #[test]
    fn children_are_indented_under_their_parent_with_offsets_bars_and_marks() {
        let mut a = mk("a", Some("root"), 0, 40_000_000, Status::Ok);
        a.attributes
            .insert("file.name".into(), AttrValue::Str("x.nii".into()));
        let spans = [
            mk("b", Some("root"), 50_000_000, 100_000_000, Status::Error),
            mk("root", None, 0, 100_000_000, Status::Unset),
            a,
        ];
        let text = waterfall(&spans, 10, &["file.name"]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("100 ms") && lines[0].contains("3 spans"));
        assert_eq!(lines[1], "root  +0.00 ms   ██████████     100 ms ◆");
        assert_eq!(
            lines[2],
            "  a   +0.00 ms   ████······    40.0 ms ◆  file.name=x.nii"
        );
        assert_eq!(
            lines[3],
            "  b   +50.0 ms   ·····█████    50.0 ms ◆ ERROR boom"
        );
    }

    #[test]
    fn rows_carry_offsets_and_critical_times() {
        let spans = [
            mk("root", None, 0, 100_000_000, Status::Unset),
            mk("a", Some("root"), 10_000_000, 30_000_000, Status::Ok),
        ];
        let rows = trace_rows(&spans);
        assert_eq!(rows[1].depth, 1);
        assert_eq!(rows[1].start_offset_ms, 10.0);
        assert_eq!(rows[1].critical_ms, Some(20.0));
        assert_eq!(rows[0].self_ms, Some(80.0));
    }
}
