//! The JSON sidecars of the output images: their fields, written with sorted keys (canonical
//! JSON), and read back for resume and QC.

use super::provenance::Provenance;
use crate::bids::Input;
use crate::stages::{Fact, Stage, StageSettings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// BIDS URI scheme of the source dataset, linked as `raw` in `dataset_description.json`.
const RAW_URI_PREFIX: &str = "bids:raw:";
/// Larger than any sidecar neuro-batch writes.
const MAX_SIDECAR_BYTES: u64 = 1 << 20;

/// A BIDS URI for `input` in the source dataset (linked as `raw`).
pub fn source_uri(input: &Input) -> String {
    format!("{RAW_URI_PREFIX}{}", input.relative.display())
}

/// Facts per step (`load_file`, a stage, ...), as recorded in the preproc sidecar.
pub type StepFacts = BTreeMap<String, BTreeMap<String, Fact>>;

/// `..._desc-brain_mask.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MaskSidecar {
    /// What the mask is.
    pub description: String,
    /// BIDS mask type (`Brain`).
    #[serde(rename = "Type")]
    pub mask_type: String,
    /// The raw input, as a `bids:raw:` URI.
    pub sources: Vec<String>,
    /// The image whose grid the mask is on.
    pub spatial_reference: String,
}

impl MaskSidecar {
    /// The brain mask made from the raw input `source` (a `bids:raw:` URI).
    pub fn brain(source: &str) -> Self {
        Self {
            description: "Brain mask from neuro-batch skull_strip".into(),
            mask_type: "Brain".into(),
            sources: vec![source.to_string()],
            spatial_reference: source.to_string(),
        }
    }

    /// Read the sidecar at `path`.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = neuro_batch_fsutil::read_regular_text(path, MAX_SIDECAR_BYTES)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// The raw input's path relative to the source dataset, from the first `bids:raw:` source.
    pub fn raw_source(&self) -> Option<PathBuf> {
        self.sources
            .first()
            .and_then(|s| s.strip_prefix(RAW_URI_PREFIX))
            .map(PathBuf::from)
    }
}

/// `..._desc-biasfield_<suffix>.json` (with `--save-intermediates`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BiasFieldSidecar {
    /// What the field is.
    pub description: String,
    /// Always false: the field is estimated on the whole head grid.
    pub skull_stripped: bool,
    /// The raw input, as a `bids:raw:` URI.
    pub sources: Vec<String>,
    /// The image whose grid the field is on.
    pub spatial_reference: String,
}

impl BiasFieldSidecar {
    /// The field estimated for the raw input `source`.
    pub fn new(source: &str) -> Self {
        Self {
            description: "Multiplicative bias field estimated by neuro-batch bias_correction; \
                          the input divided by this field is the bias-corrected image"
                .into(),
            skull_stripped: false,
            sources: vec![source.to_string()],
            spatial_reference: source.to_string(),
        }
    }
}

/// `..._desc-preproc_<suffix>.json`; written last, so its presence marks the input as done.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PreprocSidecar<'a> {
    /// `Preprocessed by neuro-batch: <stages>`.
    pub description: String,
    /// Whether skull stripping ran (non-brain voxels are zero).
    pub skull_stripped: bool,
    /// The raw input, as a `bids:raw:` URI.
    pub sources: Vec<String>,
    /// The image whose grid the output is on.
    pub spatial_reference: String,
    /// neuro-batch's own record.
    pub neuro_batch: NeuroBatchRecord<'a>,
}

/// The `NeuroBatch` block of a preproc sidecar.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NeuroBatchRecord<'a> {
    /// neuro-batch version.
    pub version: &'static str,
    /// Stages run, in order.
    pub stages: Vec<&'static str>,
    /// Stage parameters.
    pub parameters: &'a StageSettings,
    /// What each step reported.
    pub facts: StepFacts,
    /// Fingerprint of the input (null when it could not be taken).
    pub input_fingerprint: Option<&'a super::provenance::Fingerprint>,
    /// Digest of the settings (null with the fingerprint).
    pub settings_digest: Option<&'a str>,
}

impl<'a> PreprocSidecar<'a> {
    /// The sidecar of an input processed by `stages` with `settings`.
    pub fn new(
        source: &str,
        stages: &[Stage],
        settings: &'a StageSettings,
        facts: StepFacts,
        provenance: Option<&'a Provenance>,
    ) -> Self {
        let names: Vec<&'static str> = stages.iter().map(|s| s.name()).collect();
        Self {
            description: format!("Preprocessed by neuro-batch: {}", names.join(", ")),
            skull_stripped: stages.contains(&Stage::SkullStrip),
            sources: vec![source.to_string()],
            spatial_reference: source.to_string(),
            neuro_batch: NeuroBatchRecord {
                version: env!("CARGO_PKG_VERSION"),
                stages: names,
                parameters: settings,
                facts,
                input_fingerprint: provenance.map(|p| &p.input_fingerprint),
                settings_digest: provenance.map(|p| &*p.settings_digest),
            },
        }
    }
}

/// The provenance recorded in the preproc sidecar at `path`, if it has a complete one.
pub fn read_provenance(path: &Path) -> Option<Provenance> {
    #[derive(Deserialize)]
    struct Recorded {
        #[serde(rename = "NeuroBatch")]
        neuro_batch: Provenance,
    }
    let text = neuro_batch_fsutil::read_regular_text(path, MAX_SIDECAR_BYTES).ok()?;
    serde_json::from_str::<Recorded>(&text)
        .ok()
        .map(|r| r.neuro_batch)
}

/// Write a sidecar atomically as canonical JSON: pretty, keys sorted at every level.
pub fn write(path: &Path, sidecar: &impl Serialize) -> std::io::Result<()> {
    let value = serde_json::to_value(sidecar).map_err(std::io::Error::other)?;
    neuro_batch_fsutil::write_json_atomic(path, &value)
}
