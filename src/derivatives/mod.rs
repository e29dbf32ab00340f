//! BIDS-Derivatives outputs: names that mirror the input tree, sidecars, the dataset
//! description, and atomic JSON writes.

use crate::bids::{Dataset, Input};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The BIDS version the outputs follow.
pub const BIDS_VERSION: &str = "1.10.0";
/// Where neuro-batch's source lives (recorded in `GeneratedBy`).
pub const CODE_URL: &str = env!("CARGO_PKG_REPOSITORY");
/// Folder (under OUTPUT_DIR) for run reports and traces; listed in `.bidsignore`.
pub const LOGS_DIR: &str = "logs";

/// Where the outputs for one input go.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputPaths {
    /// Directory holding them (`sub-X/[ses-Y/]anat`).
    pub dir: PathBuf,
    /// `..._desc-preproc_<suffix>.nii.gz`.
    pub preproc: PathBuf,
    /// Its JSON sidecar; written last, so its presence marks the input as done.
    pub preproc_sidecar: PathBuf,
    /// `..._desc-brain_mask.nii.gz` and sidecar, when skull stripping runs.
    pub mask: Option<(PathBuf, PathBuf)>,
    /// `..._desc-biasfield_<suffix>.nii.gz` and sidecar, with `--save-intermediates`.
    pub bias_field: Option<(PathBuf, PathBuf)>,
}

impl OutputPaths {
    /// Every image and sidecar path, images first.
    pub fn all(&self) -> Vec<&Path> {
        let mut paths = vec![self.preproc.as_path()];
        for (image, sidecar) in self.mask.iter().chain(&self.bias_field) {
            paths.push(image);
            paths.push(sidecar);
        }
        paths.push(&self.preproc_sidecar);
        paths
    }
}

/// The output paths for `input` under `out_root`: the preproc image always, the brain mask
/// `with_mask`, the estimated bias field `with_bias_field`.
pub fn output_paths(
    out_root: &Path,
    input: &Input,
    with_mask: bool,
    with_bias_field: bool,
) -> OutputPaths {
    let dir = out_root.join(input.relative.parent().unwrap_or(Path::new("")));
    let preproc = input.name.with_entity("desc", "preproc");
    let brain = input.name.with_entity("desc", "brain");
    let field = input.name.with_entity("desc", "biasfield");
    let suffix = &input.name.suffix;
    OutputPaths {
        preproc: dir.join(
            preproc
                .with_suffix(&input.name.suffix, ".nii.gz")
                .to_string(),
        ),
        preproc_sidecar: dir.join(preproc.with_suffix(&input.name.suffix, ".json").to_string()),
        mask: with_mask.then(|| {
            (
                dir.join(brain.with_suffix("mask", ".nii.gz").to_string()),
                dir.join(brain.with_suffix("mask", ".json").to_string()),
            )
        }),
        bias_field: with_bias_field.then(|| {
            (
                dir.join(field.with_suffix(suffix, ".nii.gz").to_string()),
                dir.join(field.with_suffix(suffix, ".json").to_string()),
            )
        }),
        dir,
    }
}

/// A BIDS URI for `input` in the source dataset (linked as `raw`).
pub fn source_uri(input: &Input) -> String {
    format!("bids:raw:{}", input.relative.display())
}

/// `dataset_description.json` for the derivative dataset. The content depends only on the
/// source dataset and the version, so concurrent shards write identical bytes.
pub fn dataset_description(source: &Dataset) -> Value {
    let uri = file_uri(&source.root);
    json!({
        "Name": format!("neuro-batch preprocessing of {}", source.name),
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "neuro-batch",
            "Version": env!("CARGO_PKG_VERSION"),
            "CodeURL": CODE_URL,
        }],
        "SourceDatasets": [{ "URL": uri }],
        "DatasetLinks": { "raw": uri },
    })
}

/// Create OUTPUT_DIR's fixed files: `dataset_description.json`, `README.md`, `.bidsignore`
/// (hiding the logs and qc folders from validators) and the logs folder itself.
pub fn prepare_output_root(out_root: &Path, source: &Dataset) -> std::io::Result<()> {
    std::fs::create_dir_all(out_root.join(LOGS_DIR))?;
    write_json_atomic(
        &out_root.join("dataset_description.json"),
        &dataset_description(source),
    )?;
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
    let ignored = format!("{LOGS_DIR}\n{}\n", crate::qc::QC_DIR);
    write_atomic(&out_root.join(".bidsignore"), ignored.as_bytes())
}

/// Write `value` as pretty JSON through a temporary file renamed into place.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Write `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_builder().tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Temporary files for atomic writes: hidden names, and ordinary permissions (0666 less
/// the umask) instead of tempfile's private 0600, so outputs are readable as usual.
pub fn temp_builder() -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".neuro-batch-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bids::BidsName;

    #[test]
    fn mirrors_the_input_tree() {
        let input = Input {
            path: "/data/sub-01/ses-a/anat/sub-01_ses-a_run-1_T1w.nii".into(),
            relative: "sub-01/ses-a/anat/sub-01_ses-a_run-1_T1w.nii".into(),
            subject: "01".into(),
            session: Some("a".into()),
            name: BidsName::parse("sub-01_ses-a_run-1_T1w.nii").unwrap(),
        };
        let p = output_paths(Path::new("/out"), &input, true, true);
        assert_eq!(
            p.preproc,
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-preproc_T1w.nii.gz")
        );
        assert_eq!(
            p.preproc_sidecar,
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-preproc_T1w.json")
        );
        let (mask, sidecar) = p.mask.unwrap();
        assert_eq!(
            mask,
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-brain_mask.nii.gz")
        );
        assert_eq!(
            sidecar,
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-brain_mask.json")
        );
        assert_eq!(
            source_uri(&input),
            "bids:raw:sub-01/ses-a/anat/sub-01_ses-a_run-1_T1w.nii"
        );
    }
}
