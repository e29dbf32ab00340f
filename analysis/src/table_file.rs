//! The span table on disk: JSON, one typed array per column.
//!
//! `{"neuro_batch_span_table": 1, "height": N, "columns": [{"name": .., "type": .., "values":
//! [..]}, ..]}` with `type` one of `str`, `i64`, `u64`, `f64`, `bool` and `null` for a missing
//! value. Written by `analyze --save-table`, read back by `compare` as a baseline. (Arrow IPC,
//! the earlier form, pulled zstd, lz4, polars-io, polars-ops and polars' streaming engine into
//! every build: a clean release build on 2 cores went from 5 min 27-30 s to 5 min 02 s without
//! them.)

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::table::TableError;

/// The format version written as the value of [`MAGIC_KEY`].
const VERSION: u32 = 1;
/// The first key of a saved table: what [`is_saved`] looks for.
const MAGIC_KEY: &str = "neuro_batch_span_table";
/// What an Arrow IPC file starts with: tables saved by neuro-batch before this format.
const ARROW_MAGIC: &[u8] = b"ARROW1";

#[derive(Serialize, Deserialize)]
struct Saved {
    neuro_batch_span_table: u32,
    height: usize,
    columns: Vec<SavedColumn>,
}

#[derive(Serialize, Deserialize)]
struct SavedColumn {
    name: String,
    #[serde(flatten)]
    values: SavedValues,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "values", rename_all = "lowercase")]
enum SavedValues {
    Str(Vec<Option<String>>),
    I64(Vec<Option<i64>>),
    U64(Vec<Option<u64>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
}

impl SavedValues {
    fn of(column: &Column) -> Result<SavedValues, PolarsError> {
        Ok(match column.dtype() {
            DataType::Boolean => SavedValues::Bool(column.bool()?.iter().collect()),
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                let c = column.cast(&DataType::UInt64)?;
                SavedValues::U64(c.u64()?.iter().collect())
            }
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                let c = column.cast(&DataType::Int64)?;
                SavedValues::I64(c.i64()?.iter().collect())
            }
            DataType::Float32 | DataType::Float64 => {
                let c = column.cast(&DataType::Float64)?;
                SavedValues::F64(c.f64()?.iter().collect())
            }
            _ => {
                let c = column.cast(&DataType::String)?;
                SavedValues::Str(c.str()?.iter().map(|v| v.map(str::to_owned)).collect())
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            SavedValues::Str(v) => v.len(),
            SavedValues::I64(v) => v.len(),
            SavedValues::U64(v) => v.len(),
            SavedValues::F64(v) => v.len(),
            SavedValues::Bool(v) => v.len(),
        }
    }

    fn into_column(self, name: &str) -> Column {
        let name = name.into();
        match self {
            SavedValues::Str(v) => Column::new(name, v),
            SavedValues::I64(v) => Column::new(name, v),
            SavedValues::U64(v) => Column::new(name, v),
            SavedValues::F64(v) => Column::new(name, v),
            SavedValues::Bool(v) => Column::new(name, v),
        }
    }
}

/// Writes `df` to `path` (atomically: a temporary file renamed into place). Non-finite
/// doubles are written as `null`, which JSON cannot otherwise say.
pub(crate) fn write(df: &DataFrame, path: &Path) -> Result<(), TableError> {
    let columns = df
        .columns()
        .iter()
        .map(|c| {
            Ok(SavedColumn {
                name: c.name().to_string(),
                values: SavedValues::of(c)?,
            })
        })
        .collect::<Result<Vec<_>, PolarsError>>()?;
    let saved = Saved {
        neuro_batch_span_table: VERSION,
        height: df.height(),
        columns,
    };
    neuro_batch_fsutil::write_atomic_with(path, |file| {
        let mut out = BufWriter::new(file);
        serde_json::to_writer(&mut out, &saved).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        out.flush()
    })
    .map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `path` starts like a saved table (of this format or the earlier Arrow IPC one).
pub(crate) fn is_saved(path: &Path) -> bool {
    let mut head = Vec::with_capacity(64);
    let read =
        neuro_batch_fsutil::open_regular(path).and_then(|f| f.take(64).read_to_end(&mut head));
    if read.is_err() {
        return false;
    }
    head.starts_with(ARROW_MAGIC) || {
        let text = String::from_utf8_lossy(&head);
        let text = text.trim_start();
        text.starts_with('{')
            && text[1..]
                .trim_start()
                .starts_with(&format!("\"{MAGIC_KEY}\""))
    }
}

/// Reads a table written by [`write`]; a table saved as Arrow IPC by an earlier neuro-batch is
/// an error that says to save it again.
pub(crate) fn read(path: &Path) -> Result<DataFrame, TableError> {
    let io = |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(neuro_batch_fsutil::open_regular(path).map_err(io)?);
    let head = std::io::BufRead::fill_buf(&mut file).map_err(io)?;
    if head.starts_with(ARROW_MAGIC) {
        return Err(TableError::Format(
            path.to_path_buf(),
            "saved as Arrow IPC by an earlier neuro-batch; save it again with \
             `analyze --save-table`"
                .into(),
        ));
    }
    let saved: Saved = serde_json::from_reader(file)
        .map_err(|e| TableError::Format(path.to_path_buf(), e.to_string()))?;
    if saved.neuro_batch_span_table != VERSION {
        return Err(TableError::Format(
            path.to_path_buf(),
            format!(
                "format version {} (this neuro-batch reads {VERSION})",
                saved.neuro_batch_span_table
            ),
        ));
    }
    let mut columns = Vec::with_capacity(saved.columns.len());
    for c in saved.columns {
        if c.values.len() != saved.height {
            return Err(TableError::Format(
                path.to_path_buf(),
                format!(
                    "column {:?} has {} values for {} rows",
                    c.name,
                    c.values.len(),
                    saved.height
                ),
            ));
        }
        columns.push(c.values.into_column(&c.name));
    }
    Ok(DataFrame::new(saved.height, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataFrame {
        DataFrame::new(
            3,
            vec![
                Column::new("s".into(), [Some("01"), None, Some("x\"y")]),
                Column::new("i".into(), [Some(-3i64), None, Some(i64::MAX)]),
                Column::new(
                    "u".into(),
                    [Some(1_764_000_000_000_000_000u64), Some(0), None],
                ),
                Column::new("f".into(), [Some(0.1f64), None, Some(-2.5e-9)]),
                Column::new("b".into(), [Some(true), Some(false), None]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn every_type_and_null_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let df = sample();
        write(&df, &path).unwrap();
        assert!(is_saved(&path));
        let back = read(&path).unwrap();
        assert_eq!(back.schema(), df.schema());
        assert!(back.equals_missing(&df), "{back:?} vs {df:?}");
    }

    #[test]
    fn trace_files_and_old_arrow_tables_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("traces.jsonl");
        std::fs::write(&jsonl, "{\"resourceSpans\":[]}\n").unwrap();
        assert!(!is_saved(&jsonl));
        let arrow = dir.path().join("old.arrow");
        std::fs::write(&arrow, b"ARROW1\0\0rest").unwrap();
        assert!(is_saved(&arrow));
        let err = read(&arrow).unwrap_err().to_string();
        assert!(
            err.contains("old.arrow") && err.contains("save it again"),
            "{err}"
        );
    }

    #[test]
    fn a_column_of_the_wrong_length_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(
            &path,
            r#"{"neuro_batch_span_table":1,"height":2,"columns":[{"name":"n","type":"i64","values":[1]}]}"#,
        )
        .unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.json") && err.contains("\"n\" has 1 values for 2 rows"),
            "{err}"
        );
    }
}
