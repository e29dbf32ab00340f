//! `neuro-batch trace TRACE_ID`: one trace as a terminal waterfall.

use anyhow::anyhow;
use neuro_batch_analysis::render;
use neuro_batch_analysis::span::normalize_trace_id;
use neuro_batch_analysis::tempo;

use super::analyze::{emit, no_source};
use super::source;
use crate::cli::TraceArgs;
use crate::error::{ExitCode, Failure};

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
    let id = normalize_trace_id(&id);
    let (spans, place) = match (&args.source.tempo, args.source.traces.is_empty()) {
        (Some(url), _) => {
            let client = source::client(url, &args.source)?;
            let spans = tempo::fetch_trace(&client, &id)
                .map_err(|e| Failure::new(ExitCode::Unavailable, e))?
                .unwrap_or_default();
            (spans, format!("Tempo at {url}"))
        }
        (None, false) => {
            let loaded = source::from_store(&args.source)?;
            let spans = loaded
                .spans
                .into_iter()
                .filter(|s| s.trace_id == id)
                .collect();
            (spans, loaded.info.detail)
        }
        (None, true) => return Err(no_source()),
    };
    if spans.is_empty() {
        return Err(Failure::new(
            ExitCode::NoInputs,
            anyhow!("trace {id} is not in {place}"),
        ));
    }
    emit(&render::waterfall(&spans, args.width as usize), None)?;
    Ok(ExitCode::Success)
}
