//! Critical path and self time of one trace.
//!
//! The critical path follows Jaeger's algorithm: start at the root's end, step into the child
//! that finished last before the cursor, walk that child the same way, then continue from the
//! child's start; time not covered by such a child is the parent's own. Children are first
//! clipped to their parent (a child that outlives its parent, e.g. after a clock skew or an
//! async hand-off, counts only while the parent is open; one that starts after the parent ended
//! is left out). Self time is a span's duration minus the union of its clipped children.

use crate::span::{Span, Tree};

/// Times of one span within its trace, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanTimes {
    /// Duration not covered by any child.
    pub self_ns: i64,
    /// Time this span itself (not its children) spends on the trace's critical path.
    pub critical_ns: i64,
}

/// The timing of one trace.
#[derive(Debug, Clone)]
pub struct TraceTimes {
    /// Index (into the slice given to [`analyze_trace`]) of the root span.
    pub root: usize,
    /// Per span, in the order given.
    pub spans: Vec<SpanTimes>,
}

/// Computes self time and critical-path time for the spans of one trace. The root is the span
/// without a parent (or whose parent is missing) that starts first; `None` for no spans.
pub fn analyze_trace(spans: &[Span], tree: &Tree) -> Option<TraceTimes> {
    let (mut children, roots) = (tree.children.clone(), &tree.roots);
    let root = *roots.iter().min_by_key(|&&i| spans[i].start_ns)?;

    // Clip every span to its parent, top down, over every root's subtree.
    let mut start: Vec<i64> = spans.iter().map(|s| s.start_ns).collect();
    let mut end: Vec<i64> = spans.iter().map(|s| s.end_ns).collect();
    let mut inside = vec![false; spans.len()];
    let mut stack = roots.clone();
    for &r in roots {
        inside[r] = true;
    }
    while let Some(p) = stack.pop() {
        for &c in &children[p] {
            if inside[c] {
                continue; // a cycle in bad data
            }
            if start[c] >= end[p] || end[c] <= start[p] {
                continue; // entirely outside its parent
            }
            start[c] = start[c].max(start[p]);
            end[c] = end[c].min(end[p]);
            inside[c] = true;
            stack.push(c);
        }
    }
    for kids in &mut children {
        kids.retain(|&c| inside[c]);
        kids.sort_by_key(|&c| std::cmp::Reverse(end[c]));
    }

    let mut times = vec![SpanTimes::default(); spans.len()];
    for i in (0..spans.len()).filter(|&i| inside[i]) {
        times[i].self_ns = (end[i] - start[i]) - union_length(&children[i], &start, &end);
    }

    // Children are sorted by end, latest first, and a node's cursor only moves back: each
    // child is looked at once (`next`), so wide and deep traces alike take linear time.
    let mut next = vec![0usize; spans.len()];
    let mut work = vec![(root, end[root])];
    while let Some((node, cursor)) = work.pop() {
        let kids = &children[node];
        while next[node] < kids.len() && end[kids[next[node]]] > cursor {
            next[node] += 1;
        }
        match kids.get(next[node]) {
            Some(&c) => {
                next[node] += 1;
                times[node].critical_ns += cursor - end[c];
                work.push((node, start[c]));
                work.push((c, end[c]));
            }
            None => times[node].critical_ns += (cursor - start[node]).max(0),
        }
    }
    Some(TraceTimes { root, spans: times })
}

/// Length of the union of the intervals `[start[i], end[i])` for `ids`.
fn union_length(ids: &[usize], start: &[i64], end: &[i64]) -> i64 {
    let mut iv: Vec<(i64, i64)> = ids.iter().map(|&i| (start[i], end[i])).collect();
    iv.sort_unstable();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for (s, e) in iv {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total + current.map_or(0, |(s, e)| e - s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Status;

    fn span(id: &str, parent: Option<&str>, start: i64, end: i64) -> Span {
        Span {
            trace_id: "t".repeat(32),
            span_id: id.into(),
            parent_id: parent.map(Into::into),
            name: id.into(),
            service: String::new(),
            start_ns: start,
            end_ns: end,
            status: Status::Unset,
            error_message: None,
            attributes: Default::default(),
        }
    }

    fn times(spans: &[Span]) -> Vec<(i64, i64)> {
        analyze_trace(spans, &Tree::of(spans))
            .unwrap()
            .spans
            .iter()
            .map(|t| (t.self_ns, t.critical_ns))
            .collect()
    }

    #[test]
    fn sequential_children_are_all_critical() {
        // root 0..100: a 10..40, b 40..90 (back to back).
        let spans = [
            span("root", None, 0, 100),
            span("a", Some("root"), 10, 40),
            span("b", Some("root"), 40, 90),
        ];
        assert_eq!(times(&spans), vec![(20, 20), (30, 30), (50, 50)]);
    }

    #[test]
    fn overlapping_children_only_the_last_finisher_and_what_precedes_it() {
        // root 0..100: a 10..60, b 20..90 (overlap), c 0..5.
        // Critical: root 90..100, b 20..90, then from 20: c ends at 5 <= 20 (a ends at 60,
        // after the cursor, so it is not critical): root 5..20, c 0..5.
        let spans = [
            span("root", None, 0, 100),
            span("a", Some("root"), 10, 60),
            span("b", Some("root"), 20, 90),
            span("c", Some("root"), 0, 5),
        ];
        let t = times(&spans);
        // Self time of root: 100 - union(0..5, 10..90) = 100 - 85 = 15.
        assert_eq!(t[0], (15, 10 + 15));
        assert_eq!(t[1], (50, 0));
        assert_eq!(t[2], (70, 70));
        assert_eq!(t[3], (5, 5));
        let critical: i64 = t.iter().map(|x| x.1).sum();
        assert_eq!(critical, 100, "the critical path covers the root exactly");
    }

    #[test]
    fn children_outliving_their_parent_are_clipped() {
        // root 0..100 → p 10..50 → q 30..80 (outlives p), r 120..130 (starts after root ends).
        let spans = [
            span("root", None, 0, 100),
            span("p", Some("root"), 10, 50),
            span("q", Some("p"), 30, 80),
            span("r", Some("root"), 120, 130),
        ];
        let t = times(&spans);
        assert_eq!(t[2], (20, 20), "q counts only 30..50");
        assert_eq!(t[1], (20, 20));
        assert_eq!(t[0], (60, 60));
        assert_eq!(t[3], (0, 0), "r lies outside the root");
        assert_eq!(t.iter().map(|x| x.1).sum::<i64>(), 100);
    }

    #[test]
    fn nested_critical_path_descends() {
        // root 0..100 → file 0..100 → stage1 0..30, stage2 30..95.
        let spans = [
            span("root", None, 0, 100),
            span("file", Some("root"), 0, 100),
            span("s1", Some("file"), 0, 30),
            span("s2", Some("file"), 30, 95),
        ];
        assert_eq!(times(&spans), vec![(0, 0), (5, 5), (30, 30), (65, 65)]);
    }

    #[test]
    fn orphans_do_not_replace_the_root() {
        let spans = [
            span("late", Some("missing"), 50, 60),
            span("root", None, 0, 100),
        ];
        let t = analyze_trace(&spans, &Tree::of(&spans)).unwrap();
        assert_eq!(t.root, 1);
        assert_eq!(t.spans[1].critical_ns, 100);
    }
}
