//! `neuro-batch trace TRACE_ID`: one trace as a terminal waterfall, or its spans as JSON.

use anyhow::{Context, anyhow};
use neuro_batch_analysis::render;
use neuro_batch_analysis::source;

use super::{emit, no_source, source_failure};
use crate::cli::{TraceArgs, TraceFormat};
use crate::error::{ExitCode, Failure};
use crate::telemetry::names;

/// Attributes a waterfall row shows where a span introduces them: which file, how big.
const KEY_ATTRIBUTES: [&str; 3] = [names::FILE_NAME, names::FILE_SIZE_MB, names::ARRAY_SHAPE];

pub(super) fn trace(args: TraceArgs) -> Result<ExitCode, Failure> {
    let id = args.trace_id.trim().to_ascii_lowercase();
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow!(
                "{:?} is not a trace id (up to 32 hex digits)",
                args.trace_id
            ),
        ));
    }
    let source = args.source.trace_source().ok_or_else(no_source)?;
    let (spans, place) = source::load_trace(&source, &id).map_err(source_failure)?;
    if spans.is_empty() {
        let hint = if !args.source.traces.is_empty() && !args.source.all_runs {
            " (only the newest run that processed something was read; --all-runs reads every \
             run's trace file)"
        } else {
            ""
        };
        return Err(Failure::new(
            ExitCode::NoInputs,
            anyhow!("trace {id} is not in {place}{hint}"),
        ));
    }
    let text = match args.format {
        TraceFormat::Table => render::waterfall(&spans, args.width as usize, &KEY_ATTRIBUTES),
        TraceFormat::Json => {
            serde_json::to_string_pretty(&render::trace_rows(&spans)).context("serialising")? + "\n"
        }
    };
    emit(&text, None)?;
    Ok(ExitCode::Success)
}
