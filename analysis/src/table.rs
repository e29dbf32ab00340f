//! The span table: one row per span, every attribute a typed column (polars).
//!
//! Built from decoded spans: traces whose tree is known get self time and critical-path time
//! per span, and every span inherits the attributes of its ancestors that it does not carry
//! itself (a stage span gets its file's `file.size_mb`, its subject's `bids.subject`). The table
//! can be saved and read back ([`crate::table_file`]), so a run's spans can be kept as a CI
//! artifact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use polars::prelude::*;
use rayon::prelude::*;

use crate::critical_path;
use crate::span::{AttrValue, Span, Tree};

/// Core column: 32-hex trace id.
pub const TRACE_ID: &str = "trace_id";
/// Core column: 16-hex span id.
pub const SPAN_ID: &str = "span_id";
/// Core column: parent span id (null for roots and when unknown).
pub const PARENT_ID: &str = "parent_id";
/// Core column: span name.
pub const NAME: &str = "name";
/// Core column: `service.name`.
pub const SERVICE: &str = "service";
/// Core column: start, ns since the Unix epoch.
pub const START_UNIX_NANO: &str = "start_unix_nano";
/// Core column: duration in ms.
pub const DURATION_MS: &str = "duration_ms";
/// Core column: `unset`, `ok` or `error`.
pub const STATUS: &str = "status";
/// Core column: status message or exception message.
pub const ERROR: &str = "error";
/// Core column: duration minus the union of the children, ms (null when the tree is unknown).
pub const SELF_MS: &str = "self_ms";
/// Core column: the span's own time on its trace's critical path, ms (null when unknown).
pub const CRITICAL_MS: &str = "critical_ms";
/// Core column: whether the span is its trace's root.
pub const IS_ROOT: &str = "is_root";
/// Core column: CPU ms of the span: its [`STEP_CPU_MS`] attribute, or for a span without one
/// (`process_file`, `process_subject`) the sum of its descendants'; null when no span of its
/// subtree has one (traces from before it was recorded). Optional in saved tables.
pub const CPU_MS: &str = "cpu_ms";

/// The attribute every step span carries: CPU time of the threads that worked for it.
pub const STEP_CPU_MS: &str = "step.cpu_ms";

/// Every core column, in table order. Attribute columns follow, sorted by key; an attribute
/// whose key equals a core column's name is left out.
pub const CORE_COLUMNS: [&str; 13] = [
    TRACE_ID,
    SPAN_ID,
    PARENT_ID,
    NAME,
    SERVICE,
    START_UNIX_NANO,
    DURATION_MS,
    STATUS,
    ERROR,
    SELF_MS,
    CRITICAL_MS,
    IS_ROOT,
    CPU_MS,
];

/// Why a table could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A polars error (building, reading or writing).
    #[error("span table: {0}")]
    Polars(#[from] PolarsError),
    /// The file could not be opened or created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A saved table without the core columns.
    #[error("{0}: not a neuro-batch span table (missing column {1:?})")]
    NotATable(std::path::PathBuf, &'static str),
    /// A saved table that cannot be read: malformed, another version, or the old Arrow form.
    #[error("{0}: not a readable neuro-batch span table: {1}")]
    Format(std::path::PathBuf, String),
}

/// One attribute's values over a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Ints and doubles, as doubles.
    Numeric(Vec<Option<f64>>),
    /// Strings, and bools as `true`/`false`.
    Categorical(Vec<Option<String>>),
}

/// The span table.
#[derive(Debug, Clone)]
pub struct SpanTable {
    df: DataFrame,
}

impl SpanTable {
    /// Builds the table. Spans are grouped by trace; where a trace has parent links, self and
    /// critical-path times are computed and attributes inherited from ancestors.
    pub fn build(spans: Vec<Span>) -> Result<Self, TableError> {
        let mut builder = TableBuilder::default();
        builder.push(spans)?;
        builder.finish()
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.df.height()
    }

    /// Whether there are no spans.
    pub fn is_empty(&self) -> bool {
        self.df.height() == 0
    }

    /// Attribute column names (everything but the core columns), sorted.
    pub fn attribute_keys(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .into_iter()
            .map(|c| c.to_string())
            .filter(|c| !CORE_COLUMNS.contains(&c.as_str()))
            .collect()
    }

    /// The rows of one span name.
    pub fn of_name(&self, name: &str) -> Result<SpanTable, TableError> {
        let mask = self.df.column(NAME)?.str()?.equal(name);
        Ok(SpanTable {
            df: self.df.filter(&mask)?,
        })
    }

    /// The rows whose status is not error.
    pub fn without_errors(&self) -> Result<SpanTable, TableError> {
        let mask = self.df.column(STATUS)?.str()?.not_equal("error");
        Ok(SpanTable {
            df: self.df.filter(&mask)?,
        })
    }

    /// The rows of any of these span names.
    pub fn of_names(&self, names: &[String]) -> Result<SpanTable, TableError> {
        let mask: BooleanChunked = self
            .strings(NAME)?
            .iter()
            .map(|n| Some(n.as_ref().is_some_and(|n| names.contains(n))))
            .collect();
        Ok(SpanTable {
            df: self.df.filter(&mask)?,
        })
    }

    /// Names of spans that are the parent of another span (containers such as
    /// `process_file`), as opposed to steps.
    pub fn container_names(&self) -> Result<HashSet<String>, TableError> {
        let traces = self.strings(TRACE_ID)?;
        let ids = self.strings(SPAN_ID)?;
        let names = self.strings(NAME)?;
        let name_of: HashMap<(&str, &str), &str> = traces
            .iter()
            .zip(&ids)
            .zip(&names)
            .filter_map(|((t, id), name)| Some(((t.as_deref()?, id.as_deref()?), name.as_deref()?)))
            .collect();
        Ok(traces
            .iter()
            .zip(self.strings(PARENT_ID)?)
            .filter_map(|(t, parent)| {
                let key = (t.as_deref()?, parent.as_deref()?);
                name_of.get(&key).map(|n| (*n).to_owned())
            })
            .collect())
    }

    /// The root rows (one per trace whose tree is known).
    pub fn roots(&self) -> Result<SpanTable, TableError> {
        let mask = self.df.column(IS_ROOT)?.bool()?.clone();
        Ok(SpanTable {
            df: self.df.filter(&mask)?,
        })
    }

    /// Distinct span names, ordered by total duration, largest first.
    pub fn span_names(&self) -> Result<Vec<String>, TableError> {
        let mut totals: HashMap<String, f64> = HashMap::new();
        for (n, d) in self
            .strings(NAME)?
            .into_iter()
            .zip(self.floats(DURATION_MS)?)
        {
            *totals.entry(n.unwrap_or_default()).or_default() += d.unwrap_or(0.0);
        }
        let mut names: Vec<(String, f64)> = totals.into_iter().collect();
        names.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(names.into_iter().map(|(n, _)| n).collect())
    }

    /// Whether the table has this column (attribute or core).
    pub fn has_column(&self, column: &str) -> bool {
        self.df.column(column).is_ok()
    }

    /// Whether any span has a CPU figure ([`CPU_MS`]).
    pub fn has_cpu(&self) -> bool {
        self.floats(CPU_MS)
            .is_ok_and(|v| v.iter().any(Option::is_some))
    }

    /// A float column (ints converted).
    pub fn floats(&self, column: &str) -> Result<Vec<Option<f64>>, TableError> {
        let c = self.df.column(column)?.cast(&DataType::Float64)?;
        Ok(c.f64()?.iter().collect())
    }

    /// A string column (other types rendered as text).
    pub fn strings(&self, column: &str) -> Result<Vec<Option<String>>, TableError> {
        let c = self.df.column(column)?.cast(&DataType::String)?;
        Ok(c.str()?.iter().map(|v| v.map(str::to_owned)).collect())
    }

    /// An attribute's values, numeric for int and double columns, categorical otherwise.
    pub fn values(&self, column: &str) -> Result<Values, TableError> {
        let dtype = self.df.column(column)?.dtype().clone();
        Ok(if dtype.is_primitive_numeric() {
            Values::Numeric(self.floats(column)?)
        } else {
            Values::Categorical(self.strings(column)?)
        })
    }

    /// Writes the table to `path` as [`crate::table_file`] describes (atomically: a
    /// temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), TableError> {
        crate::table_file::write(&self.df, path)
    }

    /// Whether the file at `path` looks like a saved table.
    pub fn is_saved(path: &Path) -> bool {
        crate::table_file::is_saved(path)
    }

    /// Reads a table written by [`SpanTable::save`].
    pub fn load(path: &Path) -> Result<Self, TableError> {
        let df = crate::table_file::read(path)?;
        // Tables saved before `cpu_ms` existed load without it (compare then reads wall time).
        for column in CORE_COLUMNS.into_iter().filter(|&c| c != CPU_MS) {
            if df.column(column).is_err() {
                return Err(TableError::NotATable(path.to_path_buf(), column));
            }
        }
        Ok(SpanTable { df })
    }
}

/// Builds a [`SpanTable`] from spans as they arrive, a trace at a time, so that a large trace
/// file needs memory for the table's columns and the traces still open, not for every decoded
/// span at once.
///
/// A trace is closed (its rows computed and added to the columns) one [`push`](Self::push)
/// after its root arrived: exporters write a span when it ends, so a root, which ends last,
/// comes after its descendants, and the batch of grace covers writers that reorder within a
/// batch. Spans of a closed trace that still arrive are kept as rows without self or
/// critical-path time and counted ([`late_spans`](Self::late_spans)).
#[derive(Default)]
pub struct TableBuilder {
    /// Traces not closed yet.
    open: HashMap<String, Vec<Span>>,
    /// Traces whose root arrived in the last push: closed at the next.
    rooted: Vec<String>,
    /// Traces closed.
    closed: HashSet<String>,
    /// Spans that arrived after their trace was closed.
    late: usize,
    /// The closed traces' rows, a frame per push.
    frames: Vec<DataFrame>,
}

impl TableBuilder {
    /// Adds spans (in the order they were written).
    pub fn push(&mut self, spans: Vec<Span>) -> Result<(), TableError> {
        let ready: Vec<Vec<Span>> = std::mem::take(&mut self.rooted)
            .into_iter()
            .filter_map(|t| {
                let spans = self.open.remove(&t)?;
                self.closed.insert(t);
                Some(spans)
            })
            .collect();
        if !ready.is_empty() {
            self.frames.push(frame_of_traces(ready, true)?);
        }
        for span in spans {
            if self.closed.contains(&span.trace_id) {
                self.late += 1;
            } else if span.parent_id.is_none() {
                self.rooted.push(span.trace_id.clone());
            }
            match self.open.get_mut(&span.trace_id) {
                Some(trace) => trace.push(span),
                None => {
                    self.open.insert(span.trace_id.clone(), vec![span]);
                }
            }
        }
        Ok(())
    }

    /// Spans that arrived after their trace was closed: their trace's self and critical-path
    /// times leave them out.
    pub fn late_spans(&self) -> usize {
        self.late
    }

    /// The table of every span pushed.
    pub fn finish(mut self) -> Result<SpanTable, TableError> {
        let (late, whole): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|(t, _)| self.closed.contains(t));
        let strip = |traces: Vec<(String, Vec<Span>)>| traces.into_iter().map(|(_, s)| s).collect();
        self.frames.push(frame_of_traces(strip(whole), true)?);
        if !late.is_empty() {
            self.frames.push(frame_of_traces(strip(late), false)?);
        }
        Ok(SpanTable {
            df: concat(self.frames)?,
        })
    }
}

/// The rows of these traces, ordered by trace id; `trees`: compute trees (false for fragments
/// of traces already built, whose tree is elsewhere).
fn frame_of_traces(mut traces: Vec<Vec<Span>>, trees: bool) -> Result<DataFrame, TableError> {
    traces.sort_unstable_by(|a, b| a[0].trace_id.cmp(&b[0].trace_id));
    // Traces are independent: trees, critical paths and inheritance in parallel.
    let rows: Vec<Row> = traces
        .into_par_iter()
        .flat_map_iter(|trace| trace_rows(trace, trees))
        .collect();
    frame(&rows)
}

/// Frames stacked into one: every attribute column in each (null where a frame lacks it), with
/// the type its values share across all (ints and doubles as doubles; else text).
fn concat(frames: Vec<DataFrame>) -> Result<DataFrame, TableError> {
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    for f in &frames {
        for c in f.columns() {
            let name = c.name().as_str();
            if CORE_COLUMNS.contains(&name) {
                continue;
            }
            let kind = match c.dtype() {
                DataType::Int64 => Kind::Int,
                DataType::Float64 => Kind::Float,
                DataType::Boolean => Kind::Bool,
                _ => Kind::Str,
            };
            kinds
                .entry(name.to_owned())
                .and_modify(|e| *e = unify(*e, kind))
                .or_insert(kind);
        }
    }
    let order: Vec<(String, Option<DataType>)> = CORE_COLUMNS
        .iter()
        .map(|c| ((*c).to_owned(), None))
        .chain(kinds.into_iter().map(|(k, kind)| {
            let dtype = match kind {
                Kind::Int => DataType::Int64,
                Kind::Float => DataType::Float64,
                Kind::Bool => DataType::Boolean,
                Kind::Str => DataType::String,
            };
            (k, Some(dtype))
        }))
        .collect();
    let mut out: Option<DataFrame> = None;
    for f in frames {
        let height = f.height();
        let columns = order
            .iter()
            .map(|(name, dtype)| match (f.column(name), dtype) {
                (Ok(c), Some(d)) if c.dtype() != d => Ok(c.cast(d)?),
                (Ok(c), _) => Ok(c.clone()),
                (Err(_), Some(d)) => Ok(Column::full_null(name.as_str().into(), height, d)),
                (Err(e), None) => Err(e),
            })
            .collect::<PolarsResult<Vec<Column>>>()?;
        let f = DataFrame::new(height, columns)?;
        match &mut out {
            Some(acc) => {
                acc.vstack_mut(&f)?;
            }
            None => out = Some(f),
        }
    }
    Ok(out.unwrap_or_default())
}

/// The rows of one trace, in start order; `tree`: whether to compute its tree (else self and
/// critical-path times are unknown and nothing is inherited).
fn trace_rows(mut trace: Vec<Span>, tree: bool) -> Vec<Row> {
    trace.sort_by_key(|s| s.start_ns);
    // A trace is a tree when its spans link to parents (or it is a single span).
    let tree_known = tree && (trace.len() == 1 || trace.iter().any(|s| s.parent_id.is_some()));
    let tree = tree_known.then(|| Tree::of(&trace));
    let times = tree
        .as_ref()
        .and_then(|tree| critical_path::analyze_trace(&trace, tree));
    let cpu = cpu_ms(&trace, tree.as_ref());
    let inherited = match &tree {
        Some(tree) => inherit(&trace, tree),
        None => trace.iter().map(|s| s.attributes.clone()).collect(),
    };
    let spans = trace.into_iter().zip(inherited).zip(cpu);
    spans
        .enumerate()
        .map(|(i, ((mut span, attributes), cpu_ms))| {
            // The merged attributes include the span's own: one copy is enough.
            span.attributes = BTreeMap::new();
            let t = times.as_ref().map(|t| t.spans[i]);
            Row {
                span,
                attributes,
                self_ms: t.map(|t| t.self_ns as f64 / 1e6),
                critical_ms: t.map(|t| t.critical_ns as f64 / 1e6),
                is_root: times.as_ref().is_some_and(|t| t.root == i),
                cpu_ms,
            }
        })
        .collect()
}

struct Row {
    /// The span, its attributes moved into `attributes`.
    span: Span,
    attributes: BTreeMap<String, AttrValue>,
    self_ms: Option<f64>,
    critical_ms: Option<f64>,
    is_root: bool,
    cpu_ms: Option<f64>,
}

/// [`CPU_MS`] of each span of a trace: its own `step.cpu_ms`, else the sum of its children's
/// (bottom-up, so a container adds up the steps below it).
fn cpu_ms(trace: &[Span], tree: Option<&Tree>) -> Vec<Option<f64>> {
    let own: Vec<Option<f64>> = trace
        .iter()
        .map(|s| s.attributes.get(STEP_CPU_MS).and_then(AttrValue::as_f64))
        .collect();
    let Some(tree) = tree else {
        return own;
    };
    // Depth-first order from the roots, then children before parents.
    let mut order = Vec::with_capacity(trace.len());
    let mut stack: Vec<usize> = tree.roots.clone();
    let mut seen = vec![false; trace.len()];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        order.push(i);
        stack.extend(&tree.children[i]);
    }
    let mut cpu = own.clone();
    for &i in order.iter().rev() {
        if own[i].is_none() {
            let below: Vec<f64> = tree.children[i].iter().filter_map(|&c| cpu[c]).collect();
            cpu[i] = (!below.is_empty()).then(|| below.iter().sum());
        }
    }
    cpu
}

/// Each span's attributes merged with those of its ancestors (nearest ancestor wins; the
/// span's own values win over all). One pass from the roots down; spans in a parent cycle
/// (bad data) reach no root and start from their own attributes.
fn inherit(trace: &[Span], tree: &Tree) -> Vec<BTreeMap<String, AttrValue>> {
    let mut merged: Vec<Option<BTreeMap<String, AttrValue>>> = vec![None; trace.len()];
    let mut stack: Vec<(usize, Option<usize>)> = tree.roots.iter().map(|&r| (r, None)).collect();
    let mut unvisited = 0..trace.len();
    loop {
        while let Some((i, parent)) = stack.pop() {
            if merged[i].is_some() {
                continue;
            }
            let mut own = trace[i].attributes.clone();
            for (k, v) in parent
                .and_then(|p| merged[p].as_ref())
                .into_iter()
                .flatten()
            {
                own.entry(k.clone()).or_insert_with(|| v.clone());
            }
            merged[i] = Some(own);
            stack.extend(tree.children[i].iter().map(|&c| (c, Some(i))));
        }
        match unvisited.find(|&i| merged[i].is_none()) {
            Some(i) => stack.push((i, None)),
            None => break,
        }
    }
    merged.into_iter().map(Option::unwrap_or_default).collect()
}

/// The column type an attribute gets: int if every value is an int, float if every value is
/// numeric, bool if every value is a bool, string otherwise.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float,
    Bool,
    Str,
}

fn kind_of(v: &AttrValue) -> Kind {
    match v {
        AttrValue::Int(_) => Kind::Int,
        AttrValue::Float(_) => Kind::Float,
        AttrValue::Bool(_) => Kind::Bool,
        AttrValue::Str(_) => Kind::Str,
    }
}

fn unify(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (x, y) if x == y => x,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        _ => Kind::Str,
    }
}

fn frame(rows: &[Row]) -> Result<DataFrame, TableError> {
    let mut columns = core_columns(rows);
    let kinds: Vec<(&str, Kind)> = attribute_kinds(rows).into_iter().collect();
    columns.par_extend(
        kinds
            .into_par_iter()
            .map(|(key, kind)| attribute_column(rows, key, kind)),
    );
    Ok(DataFrame::new(rows.len(), columns)?)
}

/// The fixed columns ([`CORE_COLUMNS`]).
fn core_columns(rows: &[Row]) -> Vec<Column> {
    let str_col = |name: &str, f: &dyn Fn(&Row) -> Option<String>| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    vec![
        str_col(TRACE_ID, &|r| Some(r.span.trace_id.clone())),
        str_col(SPAN_ID, &|r| Some(r.span.span_id.clone())),
        str_col(PARENT_ID, &|r| r.span.parent_id.clone()),
        str_col(NAME, &|r| Some(r.span.name.clone())),
        str_col(SERVICE, &|r| Some(r.span.service.clone())),
        Column::new(
            START_UNIX_NANO.into(),
            rows.iter().map(|r| r.span.start_ns).collect::<Vec<_>>(),
        ),
        Column::new(
            DURATION_MS.into(),
            rows.iter()
                .map(|r| r.span.duration_ms())
                .collect::<Vec<_>>(),
        ),
        str_col(STATUS, &|r| Some(r.span.status.as_str().to_owned())),
        str_col(ERROR, &|r| r.span.error_message.clone()),
        Column::new(
            SELF_MS.into(),
            rows.iter().map(|r| r.self_ms).collect::<Vec<_>>(),
        ),
        Column::new(
            CRITICAL_MS.into(),
            rows.iter().map(|r| r.critical_ms).collect::<Vec<_>>(),
        ),
        Column::new(
            IS_ROOT.into(),
            rows.iter().map(|r| r.is_root).collect::<Vec<_>>(),
        ),
        Column::new(
            CPU_MS.into(),
            rows.iter().map(|r| r.cpu_ms).collect::<Vec<_>>(),
        ),
    ]
}

/// Every attribute key (other than the core columns) with the column type its values share.
fn attribute_kinds(rows: &[Row]) -> BTreeMap<&str, Kind> {
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    for r in rows {
        for (k, v) in &r.attributes {
            if CORE_COLUMNS.contains(&k.as_str()) {
                continue;
            }
            let kind = kind_of(v);
            kinds
                .entry(k.as_str())
                .and_modify(|e| *e = unify(*e, kind))
                .or_insert(kind);
        }
    }
    kinds
}

/// The column of the attribute `key`, typed `kind`; null where a row lacks it.
fn attribute_column(rows: &[Row], key: &str, kind: Kind) -> Column {
    let values = rows.iter().map(|r| r.attributes.get(key));
    match kind {
        Kind::Int => Column::new(
            key.into(),
            values
                .map(|v| match v {
                    Some(AttrValue::Int(v)) => Some(*v),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Float => Column::new(
            key.into(),
            values
                .map(|v| v.and_then(AttrValue::as_f64))
                .collect::<Vec<_>>(),
        ),
        Kind::Bool => Column::new(
            key.into(),
            values
                .map(|v| match v {
                    Some(AttrValue::Bool(v)) => Some(*v),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Str => Column::new(
            key.into(),
            values
                .map(|v| v.map(ToString::to_string))
                .collect::<Vec<_>>(),
        ),
    }
}

#[cfg(test)]
mod deep_tests {
    use super::*;
    use crate::span::Status;

    /// A chain of `depth` spans, each the parent of the next, the root carrying an attribute.
    fn chain(depth: usize) -> Vec<Span> {
        (0..depth)
            .map(|i| Span {
                trace_id: "a".repeat(32),
                span_id: format!("{i:016x}"),
                parent_id: (i > 0).then(|| format!("{:016x}", i - 1)),
                name: format!("level{}", i % 3),
                service: "s".into(),
                start_ns: i as i64,
                end_ns: (2 * depth - i) as i64,
                status: Status::Ok,
                error_message: None,
                attributes: if i == 0 {
                    [("bids.subject".to_owned(), AttrValue::Str("01".into()))].into()
                } else {
                    Default::default()
                },
            })
            .collect()
    }

    #[test]
    fn a_very_deep_trace_builds_in_one_pass() {
        // 50 000 levels: a walk per span to the root, or recursion, would not finish.
        let depth = 50_000;
        let table = SpanTable::build(chain(depth)).unwrap();
        assert_eq!(table.len(), depth);
        let subjects = table.strings("bids.subject").unwrap();
        assert!(subjects.iter().all(|s| s.as_deref() == Some("01")));
        // The critical path is the whole root: every level's own two nanoseconds, the leaf's
        // whole length.
        let critical: f64 = table.floats(CRITICAL_MS).unwrap().iter().flatten().sum();
        assert!(
            (critical - (2 * depth) as f64 / 1e6).abs() < 1e-9,
            "{critical}"
        );
    }

    #[test]
    fn a_very_wide_trace_builds_in_linear_time() {
        let width = 50_000;
        let mut spans = chain(1);
        spans[0].end_ns = 10 * width as i64;
        for i in 0..width {
            spans.push(Span {
                span_id: format!("{:016x}", i + 1),
                parent_id: Some(format!("{:016x}", 0)),
                start_ns: 10 * i as i64,
                end_ns: 10 * i as i64 + 5,
                ..chain(1).remove(0)
            });
        }
        let table = SpanTable::build(spans).unwrap();
        let critical: f64 = table.floats(CRITICAL_MS).unwrap().iter().flatten().sum();
        assert!(
            (critical - (10 * width) as f64 / 1e6).abs() < 1e-9,
            "{critical}"
        );
    }
}

#[cfg(test)]
mod builder_tests {
    use super::*;
    use crate::span::Status;

    /// Subject `t`'s trace in the order an exporter writes it: the step, then its file, then
    /// the root; `value` is the step's `x` attribute.
    fn subject(t: usize, value: AttrValue) -> Vec<Span> {
        let span = |id: u64, parent: Option<u64>, name: &str, start: i64, end: i64| Span {
            trace_id: format!("{t:032x}"),
            span_id: format!("{id:016x}"),
            parent_id: parent.map(|p| format!("{p:016x}")),
            name: name.into(),
            service: "s".into(),
            start_ns: start,
            end_ns: end,
            status: Status::Ok,
            error_message: None,
            attributes: Default::default(),
        };
        let mut root = span(1, None, "process_subject", 0, 100);
        root.attributes
            .insert("bids.subject".into(), AttrValue::Str(format!("{t:02}")));
        let mut step = span(3, Some(2), "skull_strip", 10, 60);
        step.attributes.insert("x".into(), value);
        vec![step, span(2, Some(1), "process_file", 5, 90), root]
    }

    /// The table's rows as sorted text, for comparing tables built differently.
    fn rows(table: &SpanTable) -> Vec<String> {
        let mut columns: Vec<String> = CORE_COLUMNS.iter().map(|c| c.to_string()).collect();
        columns.extend(table.attribute_keys());
        let values: Vec<Vec<Option<String>>> =
            columns.iter().map(|c| table.strings(c).unwrap()).collect();
        let mut out: Vec<String> = (0..table.len())
            .map(|i| format!("{:?}", values.iter().map(|v| &v[i]).collect::<Vec<_>>()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn built_as_it_arrives_equals_built_at_once() {
        let spans: Vec<Span> = (0..40)
            .flat_map(|t| subject(t, AttrValue::Int(t as i64)))
            .collect();
        let whole = SpanTable::build(spans.clone()).unwrap();
        let mut builder = TableBuilder::default();
        for chunk in spans.chunks(7) {
            builder.push(chunk.to_vec()).unwrap();
            assert!(
                builder.open.len() <= 6,
                "closed traces are not held as spans"
            );
        }
        assert_eq!(builder.late_spans(), 0);
        assert!(builder.frames.len() > 5, "built a few traces at a time");
        let streamed = builder.finish().unwrap();
        assert_eq!(rows(&streamed), rows(&whole));
        assert_eq!(streamed.roots().unwrap().len(), 40);
        // The step inherits its subject from the root, which arrived after it.
        let subjects = streamed
            .of_name("skull_strip")
            .unwrap()
            .strings("bids.subject")
            .unwrap();
        assert!(subjects.iter().all(Option::is_some));
    }

    #[test]
    fn an_attribute_typed_differently_in_later_traces_gets_the_shared_type() {
        let mut builder = TableBuilder::default();
        builder.push(subject(0, AttrValue::Int(3))).unwrap();
        builder.push(subject(1, AttrValue::Float(2.5))).unwrap();
        builder.push(subject(2, AttrValue::Int(4))).unwrap();
        let table = builder.finish().unwrap();
        let x = table.of_name("skull_strip").unwrap().values("x").unwrap();
        let Values::Numeric(mut x) = x else {
            panic!("ints and doubles make a numeric column: {x:?}")
        };
        x.sort_by(|a, b| a.unwrap().total_cmp(&b.unwrap()));
        assert_eq!(x, [Some(2.5), Some(3.0), Some(4.0)]);

        let mut builder = TableBuilder::default();
        builder.push(subject(0, AttrValue::Int(3))).unwrap();
        builder
            .push(subject(1, AttrValue::Str("big".into())))
            .unwrap();
        builder.push(Vec::new()).unwrap();
        let table = builder.finish().unwrap();
        let mut x = table.of_name("skull_strip").unwrap().strings("x").unwrap();
        x.sort();
        assert_eq!(x, [Some("3".to_owned()), Some("big".to_owned())]);
    }

    #[test]
    fn a_span_written_after_its_trace_was_built_is_kept_and_counted() {
        let mut spans = subject(0, AttrValue::Int(1));
        let step = spans.remove(0);
        let mut builder = TableBuilder::default();
        builder.push(spans).unwrap();
        builder.push(subject(1, AttrValue::Int(2))).unwrap();
        builder.push(vec![step]).unwrap();
        assert_eq!(builder.late_spans(), 1);
        let table = builder.finish().unwrap();
        assert_eq!(table.len(), 6);
        assert_eq!(table.roots().unwrap().len(), 2, "one root per trace still");
    }
}
