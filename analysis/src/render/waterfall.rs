//! One trace as a terminal waterfall: the span tree, indented, with a bar on a shared time axis,
//! the duration and the status.

use crate::span::{Span, Status, Tree};
use crate::units::fmt_ms;

/// Draws the trace; `width` is the bar area in columns.
pub fn waterfall(spans: &[Span], width: usize) -> String {
    let Some(t0) = spans.iter().map(|s| s.start_ns).min() else {
        return "no spans\n".into();
    };
    let t1 = spans.iter().map(|s| s.end_ns).max().unwrap_or(t0);
    let total = (t1 - t0).max(1) as f64;
    let Tree {
        mut children,
        mut roots,
    } = Tree::of(spans);
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].start_ns, spans[i].end_ns));
    by_start(&mut roots);
    children.iter_mut().for_each(by_start);

    // Depth-first order with depths.
    let mut order = Vec::new();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    let mut seen = vec![false; spans.len()];
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        order.push((i, depth));
        stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
    }
    let label = |i: usize, depth: usize| format!("{}{}", "  ".repeat(depth), spans[i].name);
    let name_width = order
        .iter()
        .map(|&(i, d)| label(i, d).chars().count())
        .max()
        .unwrap_or(0);

    let mut out = format!(
        "trace {}  {}  {} spans\n",
        spans[0].trace_id,
        fmt_ms(total / 1e6),
        spans.len()
    );
    for (i, depth) in order {
        let s = &spans[i];
        let from = (((s.start_ns - t0) as f64 / total) * width as f64).floor() as usize;
        let to = (((s.end_ns - t0) as f64 / total) * width as f64).ceil() as usize;
        let to = to.clamp(from + 1, width.max(from + 1));
        let bar: String = (0..width)
            .map(|c| if c >= from && c < to { '█' } else { '·' })
            .collect();
        let status = match s.status {
            Status::Error => format!("  ERROR {}", s.error_message.as_deref().unwrap_or_default()),
            _ => String::new(),
        };
        out += &format!(
            "{:<name_width$}  {bar}  {:>9}{status}\n",
            label(i, depth),
            fmt_ms(s.duration_ms())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_indented_under_their_parent_with_bars_in_place() {
        let mk = |id: &str, parent: Option<&str>, start: i64, end: i64, status| Span {
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
        };
        let spans = [
            mk("b", Some("root"), 50_000_000, 100_000_000, Status::Error),
            mk("root", None, 0, 100_000_000, Status::Unset),
            mk("a", Some("root"), 0, 50_000_000, Status::Ok),
        ];
        let text = waterfall(&spans, 10);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("100 ms") && lines[0].contains("3 spans"));
        assert_eq!(lines[1], "root  ██████████     100 ms");
        assert_eq!(lines[2], "  a   █████·····    50.0 ms");
        assert_eq!(lines[3], "  b   ·····█████    50.0 ms  ERROR boom");
    }
}
