//! Where every output goes: the BIDS-Derivatives names that mirror the input tree, and the
//! fixed folders and file names under OUTPUT_DIR.

use crate::bids::Input;
use neuro_batch_analysis::store;
use std::path::{Path, PathBuf};

/// Folder (under OUTPUT_DIR) for run reports, traces and SLURM files; listed in
/// `.bidsignore`. The trace store's layout is the analysis crate's, so it is defined there.
pub use neuro_batch_analysis::store::LOGS_DIR;
/// Folder (under OUTPUT_DIR) for QC pictures; listed in `.bidsignore`.
pub const QC_DIR: &str = "qc";

/// Name ending of a brain mask image.
const BRAIN_MASK: &str = "_desc-brain_mask.nii.gz";
/// Name ending of a brain mask's QC picture.
const BRAIN_QC: &str = "_desc-brain_qc.png";

/// Where the outputs for one input go.
///
/// A run keeps one per input for its whole length, so it holds the folder once and the file
/// names' stems, and builds each path when asked (10 000 inputs would otherwise hold 50 000
/// full paths, each repeating the folder).
#[derive(Debug, Clone)]
pub struct OutputPaths {
    /// Directory holding them (`sub-X/[ses-Y/]anat`).
    pub dir: PathBuf,
    /// `..._desc-preproc_<suffix>`.
    preproc: Box<str>,
    /// `..._desc-brain_mask`, when skull stripping runs.
    mask: Option<Box<str>>,
    /// `..._desc-biasfield_<suffix>`, with `--save-intermediates`.
    bias_field: Option<Box<str>>,
}

impl OutputPaths {
    /// `..._desc-preproc_<suffix>.nii.gz`.
    pub fn preproc(&self) -> PathBuf {
        self.image(&self.preproc)
    }

    /// The preproc image's JSON sidecar; written last, so its presence marks the input as done.
    pub fn preproc_sidecar(&self) -> PathBuf {
        self.sidecar(&self.preproc)
    }

    /// `..._desc-brain_mask.nii.gz` and its sidecar, when skull stripping runs.
    pub fn mask(&self) -> Option<(PathBuf, PathBuf)> {
        self.mask.as_deref().map(|stem| self.pair(stem))
    }

    /// `..._desc-biasfield_<suffix>.nii.gz` and its sidecar, with `--save-intermediates`.
    pub fn bias_field(&self) -> Option<(PathBuf, PathBuf)> {
        self.bias_field.as_deref().map(|stem| self.pair(stem))
    }

    /// Every image and sidecar path, images first.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.preproc()];
        for (image, sidecar) in self.mask().into_iter().chain(self.bias_field()) {
            paths.push(image);
            paths.push(sidecar);
        }
        paths.push(self.preproc_sidecar());
        paths
    }

    fn image(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.nii.gz"))
    }

    fn sidecar(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.json"))
    }

    fn pair(&self, stem: &str) -> (PathBuf, PathBuf) {
        (self.image(stem), self.sidecar(stem))
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
    let stem = |desc: &str, suffix: &str| -> Box<str> {
        let name = input.name.with_entity("desc", desc).with_suffix(suffix, "");
        name.to_string().into_boxed_str()
    };
    let suffix = &input.name.suffix;
    OutputPaths {
        dir: out_root.join(input.relative.parent().unwrap_or(Path::new(""))),
        preproc: stem("preproc", suffix),
        mask: with_mask.then(|| stem("brain", "mask")),
        bias_field: with_bias_field.then(|| stem("biasfield", suffix)),
    }
}

/// Whether `path` names a brain mask image written by `run`.
pub fn is_brain_mask(path: &Path) -> bool {
    path.to_string_lossy().ends_with(BRAIN_MASK)
}

/// The JSON sidecar of an image (`x.nii.gz` or `x.nii` → `x.json`).
pub fn sidecar_of(image: &Path) -> PathBuf {
    let text = image.to_string_lossy();
    let stem = text
        .strip_suffix(".nii.gz")
        .or_else(|| text.strip_suffix(".nii"))
        .unwrap_or(&text);
    PathBuf::from(format!("{stem}.json"))
}

/// Where the QC picture of the brain mask `mask` goes: `OUTPUT_DIR/qc/<mask name>_qc.png`.
pub fn qc_picture(out_root: &Path, mask: &Path) -> PathBuf {
    let name = mask
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .replace(BRAIN_MASK, BRAIN_QC);
    out_root.join(QC_DIR).join(name)
}

/// `OUTPUT_DIR/logs/neuro-batch-run-<run id>.json`.
pub fn run_report(out_root: &Path, run_id: &str) -> PathBuf {
    out_root.join(LOGS_DIR).join(store::run_report_name(run_id))
}

/// Whether the file name `name` is a run report's.
pub fn is_run_report(name: &str) -> bool {
    store::is_run_report(name)
}

/// `OUTPUT_DIR/logs/traces-<run id>.jsonl`: the run's local trace store.
pub fn trace_file(out_root: &Path, run_id: &str) -> PathBuf {
    out_root
        .join(LOGS_DIR)
        .join(neuro_batch_analysis::store::trace_file_name(run_id))
}

/// `OUTPUT_DIR/logs/neuro-batch-<batch id>.sbatch`.
pub fn sbatch_script(out_root: &Path, batch_id: &str) -> PathBuf {
    out_root
        .join(LOGS_DIR)
        .join(format!("neuro-batch-{batch_id}.sbatch"))
}

/// `OUTPUT_DIR/logs/neuro-batch-slurm-<job id>.json`: the merged summary of an array job.
pub fn slurm_summary(out_root: &Path, job_id: &str) -> PathBuf {
    out_root
        .join(LOGS_DIR)
        .join(format!("neuro-batch-slurm-{job_id}.json"))
}

/// Where SLURM writes each array task's output (`%A` job id, `%a` task index).
pub fn slurm_task_log(out_root: &Path) -> PathBuf {
    out_root.join(LOGS_DIR).join("slurm-%A_%a.out")
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
            p.preproc(),
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-preproc_T1w.nii.gz")
        );
        assert_eq!(
            p.preproc_sidecar(),
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-preproc_T1w.json")
        );
        let (mask, sidecar) = p.mask().unwrap();
        assert_eq!(
            mask,
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-brain_mask.nii.gz")
        );
        assert_eq!(
            sidecar,
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-brain_mask.json")
        );
        assert!(is_brain_mask(&mask));
        assert_eq!(sidecar_of(&mask), sidecar);
        assert_eq!(
            qc_picture(Path::new("/out"), &mask),
            Path::new("/out/qc/sub-01_ses-a_run-1_desc-brain_qc.png")
        );
        let (field, _) = p.bias_field().unwrap();
        assert_eq!(
            field,
            Path::new("/out/sub-01/ses-a/anat/sub-01_ses-a_run-1_desc-biasfield_T1w.nii.gz")
        );
    }

    #[test]
    fn run_reports_are_recognised_by_name() {
        let report = run_report(Path::new("/out"), "20260101T000000Z-abcd");
        let name = report.file_name().unwrap().to_str().unwrap();
        assert!(is_run_report(name));
        assert!(!is_run_report("traces-20260101T000000Z-abcd.jsonl"));
    }
}
