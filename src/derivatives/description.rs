//! `dataset_description.json`: the derivative dataset's own, the one `synth` writes for a raw
//! dataset, and the link back to the raw dataset that `qc` follows.

use super::BIDS_VERSION;
use crate::bids::Dataset;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where neuro-batch's source lives (recorded in `GeneratedBy`).
pub const CODE_URL: &str = env!("CARGO_PKG_REPOSITORY");
/// The file name.
pub const FILE_NAME: &str = "dataset_description.json";

/// The fields neuro-batch writes and reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DatasetDescription {
    /// Dataset name.
    #[serde(default)]
    pub name: String,
    /// BIDS version followed.
    #[serde(rename = "BIDSVersion", default)]
    pub bids_version: String,
    /// `raw` or `derivative`.
    #[serde(default)]
    pub dataset_type: String,
    /// Licence, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The programs that made it.
    #[serde(default)]
    pub generated_by: Vec<GeneratedBy>,
    /// The datasets it was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_datasets: Vec<SourceDataset>,
    /// Named links to other datasets (`raw` for the source).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dataset_links: BTreeMap<String, String>,
}

/// One `GeneratedBy` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GeneratedBy {
    /// Program name.
    pub name: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where its code is.
    #[serde(rename = "CodeURL", default, skip_serializing_if = "Option::is_none")]
    pub code_url: Option<String>,
}

/// One `SourceDatasets` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceDataset {
    /// Where it is.
    #[serde(rename = "URL")]
    pub url: String,
}

impl DatasetDescription {
    /// The derivative dataset made from `source`. The content depends only on the source
    /// dataset and the version, so concurrent shards write identical bytes.
    pub fn derivative_of(source: &Dataset) -> Self {
        let uri = file_uri(&source.root);
        Self {
            name: format!("neuro-batch preprocessing of {}", source.name),
            bids_version: BIDS_VERSION.into(),
            dataset_type: "derivative".into(),
            license: None,
            generated_by: vec![GeneratedBy {
                name: "neuro-batch".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
                code_url: Some(CODE_URL.into()),
            }],
            source_datasets: vec![SourceDataset { url: uri.clone() }],
            dataset_links: BTreeMap::from([("raw".to_string(), uri)]),
        }
    }

    /// A dataset written by `neuro-batch synth` (`raw`, or `derivative` for its ground truth).
    pub fn synthetic(name: &str, dataset_type: &str, license: Option<&str>) -> Self {
        Self {
            name: name.into(),
            bids_version: BIDS_VERSION.into(),
            dataset_type: dataset_type.into(),
            license: license.map(str::to_string),
            generated_by: vec![GeneratedBy {
                name: "neuro-batch synth".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
                code_url: None,
            }],
            source_datasets: Vec::new(),
            dataset_links: BTreeMap::new(),
        }
    }

    /// Read the description of the dataset at `root`.
    pub fn read(root: &Path) -> Result<Self, String> {
        let text = neuro_batch_fsutil::read_regular_text(&root.join(FILE_NAME), 1 << 20)
            .map_err(|e| format!("{FILE_NAME}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{FILE_NAME}: {e}"))
    }

    /// The source dataset's folder, from the `raw` link (a `file://` URI).
    pub fn raw_dataset(&self) -> Option<PathBuf> {
        self.dataset_links
            .get("raw")
            .and_then(|uri| url::Url::parse(uri).ok())
            .filter(|u| u.scheme() == "file")
            .and_then(|u| u.to_file_path().ok())
    }

    /// Write it into the dataset at `root` (atomically, keys sorted).
    pub fn write(&self, root: &Path) -> std::io::Result<()> {
        super::sidecar::write(&root.join(FILE_NAME), self)
    }
}

/// `file:///...`, percent-encoded (spaces, `#`, non-ASCII).
fn file_uri(path: &Path) -> String {
    url::Url::from_file_path(path)
        .map_or_else(|()| format!("file://{}", path.display()), String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_link_is_an_encoded_file_uri_that_reads_back() {
        let source = Dataset {
            root: PathBuf::from("/data/my study #2/bïds"),
            name: "x".into(),
            is_derivative: false,
        };
        let description = DatasetDescription::derivative_of(&source);
        let link = &description.dataset_links["raw"];
        assert_eq!(link, "file:///data/my%20study%20%232/b%C3%AFds");
        assert_eq!(description.raw_dataset(), Some(source.root));
    }
}
