//! What to tell a user whose filters selected nothing: the labels that exist, or where BIDS
//! expects the images that were found elsewhere.

use super::Filters;
use std::path::Path;

/// Subject labels listed before "and N more".
const LISTED_LABELS: usize = 20;
/// Misplaced images listed.
const LISTED_FILES: usize = 5;
/// Entries looked at for misplaced images: enough for any layout mistake, bounded for huge trees.
const SCAN_LIMIT: usize = 20_000;

/// One or two sentences on why nothing under `root` matched `filters`, and what to do.
pub fn nothing_found(root: &Path, filters: &Filters) -> String {
    let labels = subject_labels(root);
    if !filters.participants.is_empty() && !labels.is_empty() {
        return format!(
            "the dataset's subjects are {}; give --participant-label one of them (without sub-)",
            list(&labels, LISTED_LABELS)
        );
    }
    let suffixes = if filters.suffixes.is_empty() {
        "T1w".to_owned()
    } else {
        filters.suffixes.join(", ")
    };
    let expected = format!(
        "BIDS expects anatomical images at sub-<label>/[ses-<label>/]anat/\
         sub-<label>[_ses-<label>]_<suffix>.nii[.gz] (suffix {suffixes}; --suffix selects others)"
    );
    let images = images_under(root);
    if images.is_empty() {
        format!("no .nii or .nii.gz file is in the dataset at all; {expected}")
    } else {
        format!("{expected}; images found: {}", list(&images, LISTED_FILES))
    }
}

/// `a, b, c` or `a, b, c and 7 more`.
fn list(items: &[String], shown: usize) -> String {
    let head = items[..items.len().min(shown)].join(", ");
    match items.len().saturating_sub(shown) {
        0 => head,
        more => format!("{head} and {more} more"),
    }
}

/// Labels of the `sub-*` folders, sorted.
fn subject_labels(root: &Path) -> Vec<String> {
    let mut labels: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("sub-")
                .map(str::to_owned)
        })
        .collect();
    labels.sort();
    labels
}

/// Paths (relative to `root`) of NIfTI files anywhere in the first [`SCAN_LIMIT`] entries,
/// outside `derivatives/`.
fn images_under(root: &Path) -> Vec<String> {
    ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(true)
        .max_depth(Some(6))
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == "derivatives"))
        .build()
        .take(SCAN_LIMIT)
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy();
            name.ends_with(".nii") || name.ends_with(".nii.gz")
        })
        .filter_map(|e| {
            e.path()
                .strip_prefix(root)
                .ok()
                .map(|p| p.display().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_which_labels_exist_and_where_images_belong() {
        let dir = tempfile::tempdir().unwrap();
        for s in ["01", "02"] {
            std::fs::create_dir_all(dir.path().join(format!("sub-{s}/anat"))).unwrap();
        }
        std::fs::write(dir.path().join("loose_T1w.nii.gz"), b"x").unwrap();
        let by_label = Filters {
            participants: vec!["99".into()],
            ..Filters::default()
        };
        let text = nothing_found(dir.path(), &by_label);
        assert!(text.contains("subjects are 01, 02"), "{text}");
        let text = nothing_found(dir.path(), &Filters::default());
        assert!(
            text.contains("sub-<label>/[ses-<label>/]anat/") && text.contains("loose_T1w.nii.gz"),
            "{text}"
        );
        assert_eq!(
            list(&["a".into(), "b".into(), "c".into()], 2),
            "a, b and 1 more"
        );
    }
}
