//! The BIDS-Derivatives output format, owned here and only here: file names that mirror the
//! input tree ([`layout`]), the sidecars ([`sidecar`]), provenance for resume
//! ([`provenance`]), `dataset_description.json` ([`description`]), where OUTPUT_DIR may be
//! ([`placement`]), and the fixed files of OUTPUT_DIR. Every other module writes or reads
//! outputs through these types.

pub mod description;
pub mod layout;
pub mod placement;
pub mod provenance;
pub mod sidecar;

pub use description::DatasetDescription;
pub use layout::{LOGS_DIR, OutputPaths, QC_DIR, output_paths};

use crate::bids::Dataset;
use neuro_batch_fsutil::write_atomic;
use std::path::Path;

/// The BIDS version the outputs follow.
pub const BIDS_VERSION: &str = "1.10.0";

/// Create OUTPUT_DIR's fixed files: `dataset_description.json`, `README.md`, `.bidsignore`
/// (hiding the logs and qc folders from validators) and the logs folder itself.
pub fn prepare_output_root(out_root: &Path, source: &Dataset) -> std::io::Result<()> {
    std::fs::create_dir_all(out_root.join(LOGS_DIR))?;
    DatasetDescription::derivative_of(source).write(out_root)?;
    let readme = format!(
        "# neuro-batch derivatives\n\nPreprocessed anatomical images of *{}* \
         (skull strip, bias-field correction, intensity normalization), written by \
         neuro-batch {}. Each `desc-preproc` sidecar records the stages, their parameters \
         and quality facts; run reports and traces are under `{LOGS_DIR}/`.\n",
        source.name,
        env!("CARGO_PKG_VERSION")
    );
    write_atomic(&out_root.join("README.md"), readme.as_bytes())?;
    // Bare names: bids-validator 3 still reports a directory listed as `name/`.
    let ignored = format!("{LOGS_DIR}\n{QC_DIR}\n");
    write_atomic(&out_root.join(".bidsignore"), ignored.as_bytes())
}
