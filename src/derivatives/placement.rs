//! Where OUTPUT_DIR may be: never the raw dataset itself or inside it, except under its
//! `derivatives/` folder (the BIDS place for derivatives, and what fMRIPrep and MRIQC accept).
//! Writing anywhere else inside BIDS_DIR would rewrite its `dataset_description.json` and put
//! `desc-preproc` files where the next run takes them for raw inputs.

use std::path::{Component, Path, PathBuf};

/// OUTPUT_DIR would write into the raw dataset.
#[derive(Debug, thiserror::Error)]
#[error(
    "OUTPUT_DIR {} is inside BIDS_DIR {}; outputs would overwrite the raw dataset. \
     Write them under its derivatives folder instead, e.g. {}",
    output.display(),
    raw.display(),
    suggestion.display()
)]
pub struct InsideRawDataset {
    /// OUTPUT_DIR, resolved.
    pub output: PathBuf,
    /// BIDS_DIR, resolved.
    pub raw: PathBuf,
    /// `BIDS_DIR/derivatives/neuro-batch`.
    pub suggestion: PathBuf,
}

/// Refuses an `output` that resolves (symlinks and `..` followed) to `raw_root` or a folder in
/// it other than one under `raw_root/derivatives/`. `raw_root` must be canonical already.
pub fn check(raw_root: &Path, output: &Path) -> Result<(), InsideRawDataset> {
    let resolved = resolve(output);
    let inside = resolved.starts_with(raw_root);
    let derivatives = raw_root.join("derivatives");
    let under_derivatives = resolved.starts_with(&derivatives) && resolved != derivatives;
    if inside && !under_derivatives {
        return Err(InsideRawDataset {
            output: resolved,
            raw: raw_root.to_path_buf(),
            suggestion: derivatives.join("neuro-batch"),
        });
    }
    Ok(())
}

/// `path` made absolute, one component at a time: symlinks and `..` resolved as far as the path
/// exists, the rest (not created yet) applied lexically.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut resolved = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if !resolved.exists() => {
                resolved.pop();
            }
            other => resolved.push(other),
        }
        if let Ok(canonical) = std::fs::canonicalize(&resolved) {
            resolved = canonical;
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_inside_the_raw_dataset_are_refused_except_under_derivatives() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("ds");
        std::fs::create_dir_all(raw.join("sub-01/anat")).unwrap();
        std::fs::create_dir_all(raw.join("derivatives")).unwrap();
        let raw = std::fs::canonicalize(&raw).unwrap();
        let refused = |out: &Path| check(&raw, out).is_err();
        assert!(refused(&raw));
        assert!(refused(&raw.join("sub-01/anat")));
        assert!(refused(&raw.join("new/deeper")));
        assert!(refused(&raw.join("derivatives")));
        assert!(refused(&raw.join("derivatives/../out")));
        assert!(refused(&tmp.path().join("elsewhere/../ds/out")));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&raw, &link).unwrap();
        assert!(refused(&link));
        assert!(refused(&link.join("not-yet")));

        assert!(!refused(&raw.join("derivatives/neuro-batch")));
        assert!(!refused(&raw.join("derivatives/a/b")));
        assert!(!refused(&tmp.path().join("out")));
        assert!(
            !refused(&tmp.path().join("ds-out")),
            "a sibling with the same prefix"
        );
        let e = check(&raw, &raw).unwrap_err().to_string();
        assert!(e.contains("derivatives/neuro-batch"), "{e}");
    }
}
