//! `neuro-batch qc`: one picture per brain mask of a finished output directory.

use crate::cli::QcArgs;
use crate::error::{ExitCode, Failure};
use crate::qc::{QcItem, draw, find_items};
use anyhow::anyhow;
use rayon::prelude::*;

pub(super) fn qc(args: QcArgs) -> Result<ExitCode, Failure> {
    let mut items =
        find_items(&args.output_dir).map_err(|e| Failure::new(ExitCode::BadDataset, e))?;
    if !args.participant_label.is_empty() {
        items.retain(|item| selected(item, &args.participant_label));
    }
    if items.is_empty() {
        return Err(Failure::new(
            ExitCode::NoInputs,
            anyhow!("no brain mask to draw in {}", args.output_dir.display()),
        ));
    }
    let failures: Vec<String> = items
        .par_iter()
        .filter_map(|item| draw(item).err().map(|e| e.to_string()))
        .collect();
    for failure in &failures {
        eprintln!("  FAILED {failure}");
    }
    let written = items.len() - failures.len();
    if let Some(first) = items.first().and_then(|i| i.png.parent()) {
        eprintln!("neuro-batch qc: {written} pictures in {}", first.display());
    }
    Ok(if failures.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::SomeFailed
    })
}

fn selected(item: &QcItem, labels: &[String]) -> bool {
    let name = item.mask.file_name().unwrap_or_default().to_string_lossy();
    labels.iter().any(|l| {
        let label = l.strip_prefix("sub-").unwrap_or(l);
        name.starts_with(&format!("sub-{label}_"))
    })
}
