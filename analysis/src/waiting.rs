//! Waiting versus working: how much of each step's wall time was not CPU time. A step that
//! waits (for the disk, `sync_data`, other processes on the cores) looks slow in every trace
//! viewer, and no attribute explains it; its CPU time says so. Steps carry their CPU time as
//! `step.cpu_ms` (all threads that worked for the step), or `thread.cpu_ms` (its own thread)
//! from older runs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::table::{self, SpanTable, TableError};
use crate::units::fmt_ms;

/// CPU time attributes, preferred first.
const CPU_ATTRIBUTES: [&str; 2] = ["step.cpu_ms", "thread.cpu_ms"];

/// A step is reported as mostly waiting from this share of its wall time on.
pub const MOSTLY_WAITING: f64 = 0.5;

/// Traces named per step, worst first.
const WORST: usize = 3;

/// One step's wall time against its CPU time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Waiting {
    /// Span name.
    pub span: String,
    /// Spans with a CPU figure (failed ones left out).
    pub count: usize,
    /// Their summed wall time, ms.
    pub wall_ms: f64,
    /// Their summed CPU time, ms.
    pub cpu_ms: f64,
    /// `1 − cpu / wall`, 0..=1: the share of the wall time that was not compute.
    pub waiting_share: f64,
    /// Where the step waited longest.
    pub worst: Vec<WaitingTrace>,
    /// `waiting_share` ≥ [`MOSTLY_WAITING`].
    pub mostly_waiting: bool,
    /// One line for the report.
    pub headline: String,
}

/// One trace where a step waited.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WaitingTrace {
    /// Trace id.
    pub trace_id: String,
    /// The trace's label (e.g. its subject), when the spans carry it.
    pub label: Option<String>,
    /// Wall minus CPU time of the step in this trace, ms.
    pub waiting_ms: f64,
    /// That over the step's wall time there.
    pub share: f64,
}

/// Per step with a CPU figure, its waiting share; mostly-waiting steps first, then by waiting
/// time.
pub fn waiting(table: &SpanTable, label_attribute: &str) -> Result<Vec<Waiting>, TableError> {
    let Some(cpu_column) = CPU_ATTRIBUTES.into_iter().find(|c| table.has_column(c)) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in table.span_names()? {
        let rows = table.of_name(&name)?.without_errors()?;
        let cpu = rows.floats(cpu_column)?;
        if cpu.iter().all(Option::is_none) {
            continue;
        }
        let wall = rows.floats(table::DURATION_MS)?;
        let traces = rows.strings(table::TRACE_ID)?;
        let labels = if rows.has_column(label_attribute) {
            rows.strings(label_attribute)?
        } else {
            vec![None; rows.len()]
        };
        // Per trace: (wall, cpu, label).
        let mut by_trace: BTreeMap<String, (f64, f64, Option<String>)> = BTreeMap::new();
        let (mut wall_ms, mut cpu_ms, mut count) = (0.0, 0.0, 0);
        for (((w, c), t), l) in wall.iter().zip(&cpu).zip(traces).zip(labels) {
            let (Some(w), Some(c), Some(t)) = (w, c, t) else {
                continue;
            };
            // CPU time past the wall time (threads that helped) is not negative waiting.
            let c = c.min(*w);
            wall_ms += w;
            cpu_ms += c;
            count += 1;
            let entry = by_trace.entry(t).or_insert((0.0, 0.0, l));
            entry.0 += w;
            entry.1 += c;
        }
        if wall_ms <= 0.0 {
            continue;
        }
        let waiting_share = (1.0 - cpu_ms / wall_ms).clamp(0.0, 1.0);
        let mut worst: Vec<WaitingTrace> = by_trace
            .into_iter()
            .map(|(trace_id, (w, c, label))| WaitingTrace {
                trace_id,
                label,
                waiting_ms: w - c,
                share: if w > 0.0 { (w - c) / w } else { 0.0 },
            })
            .filter(|t| t.waiting_ms > 0.0)
            .collect();
        worst.sort_by(|a, b| b.waiting_ms.total_cmp(&a.waiting_ms));
        worst.truncate(WORST);
        let mostly_waiting = waiting_share >= MOSTLY_WAITING;
        out.push(Waiting {
            headline: headline(&name, waiting_share, mostly_waiting, &worst),
            span: name,
            count,
            wall_ms,
            cpu_ms,
            waiting_share,
            worst,
            mostly_waiting,
        });
    }
    out.sort_by(|a, b| {
        b.mostly_waiting
            .cmp(&a.mostly_waiting)
            .then((b.wall_ms - b.cpu_ms).total_cmp(&(a.wall_ms - a.cpu_ms)))
    });
    Ok(out)
}

fn headline(name: &str, share: f64, mostly: bool, worst: &[WaitingTrace]) -> String {
    let mut line = if mostly {
        format!(
            "{name}: {:.0} % of its time is waiting, not compute (I/O, locks or other work on \
             the cores)",
            share * 100.0
        )
    } else {
        format!("{name}: {:.0} % waiting, the rest compute", share * 100.0)
    };
    if mostly && !worst.is_empty() {
        let names: Vec<String> = worst
            .iter()
            .map(|t| {
                let who = t
                    .label
                    .clone()
                    .unwrap_or_else(|| t.trace_id[..8].to_owned());
                format!("{who} ({} waiting)", fmt_ms(t.waiting_ms))
            })
            .collect();
        line += &format!("; worst in {}", names.join(", "));
    }
    line
}
