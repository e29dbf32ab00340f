//! Finding the anatomical images of a BIDS dataset:
//! `sub-<label>/[ses-<label>/]anat/*_<suffix>.nii[.gz]`.

use super::{BidsName, DatasetError, read_participants};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An opened BIDS dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Absolute path of the dataset root.
    pub root: PathBuf,
    /// `Name` from `dataset_description.json`.
    pub name: String,
    /// Its `DatasetType` says `derivative` (the default is `raw`).
    pub is_derivative: bool,
}

/// Which inputs to select. Empty lists select everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Subject labels, with or without `sub-`.
    pub participants: Vec<String>,
    /// Session labels, with or without `ses-`.
    pub sessions: Vec<String>,
    /// Suffixes to process, e.g. `T1w`.
    pub suffixes: Vec<String>,
}

/// One anatomical image to process.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// Absolute path.
    pub path: PathBuf,
    /// Path relative to the dataset root.
    pub relative: PathBuf,
    /// Subject label (without `sub-`).
    pub subject: String,
    /// Session label (without `ses-`), if the dataset has sessions.
    pub session: Option<String>,
    /// The parsed file name.
    pub name: BidsName,
}

/// A subject and its inputs: the unit of scheduling.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    /// Subject label (without `sub-`).
    pub label: String,
    /// Sessions that hold selected inputs.
    pub sessions: Vec<String>,
    /// Selected inputs, in path order.
    pub inputs: Vec<Input>,
}

/// What discovery found, and what it had to say about the dataset.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Subjects with at least one selected input, ordered by label.
    pub subjects: Vec<Subject>,
    /// Problems that did not stop discovery (mismatched names, listed-but-missing subjects...).
    pub warnings: Vec<String>,
    /// Folders that could not be read: whatever inputs they hold are not processed, and the
    /// run counts each as a failure. (An unreadable input is an [`Input`] that fails alone.)
    pub unreadable: Vec<String>,
}

impl Discovery {
    /// Number of selected inputs.
    pub fn input_count(&self) -> usize {
        self.subjects.iter().map(|s| s.inputs.len()).sum()
    }
}

/// Larger than any real `dataset_description.json`.
const MAX_DESCRIPTION_BYTES: u64 = 1 << 20;

/// Open `root` as a BIDS dataset: it must be a directory with a readable
/// `dataset_description.json` that parses as a JSON object.
pub fn open_dataset(root: &Path) -> Result<Dataset, DatasetError> {
    let root = std::fs::canonicalize(root).map_err(|_| DatasetError::Missing {
        path: root.to_path_buf(),
    })?;
    if !root.is_dir() {
        return Err(DatasetError::Missing { path: root });
    }
    let not_bids = |reason: String| DatasetError::NotBids {
        path: root.clone(),
        reason,
    };
    let description = root.join("dataset_description.json");
    let text = neuro_batch_fsutil::read_regular_text(&description, MAX_DESCRIPTION_BYTES).map_err(
        |e| {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                "; a BIDS dataset starts with one, e.g. \
                 {\"Name\": \"my study\", \"BIDSVersion\": \"1.10.0\"}, and holds its images \
                 under sub-<label>/[ses-<label>/]anat/"
            } else {
                ""
            };
            not_bids(format!("cannot read dataset_description.json: {e}{fix}"))
        },
    )?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| not_bids(format!("dataset_description.json is not valid JSON: {e}")))?;
    let field = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
    if !json.is_object() {
        return Err(not_bids(
            "dataset_description.json is not a JSON object".into(),
        ));
    }
    Ok(Dataset {
        name: field("Name").unwrap_or_else(|| "unnamed dataset".into()),
        is_derivative: field("DatasetType").as_deref() == Some("derivative"),
        root,
    })
}

/// Find every input selected by `filters`, ordered by subject, then path.
///
/// Only `sub-*` directories are entered (so `derivatives/`, `sourcedata/`, `code/`,
/// `stimuli/`, `log/` are never scanned); dotfiles and paths matched by the root's
/// `.bidsignore` (gitignore syntax) are skipped; symlinks are followed with loop detection.
pub fn discover(dataset: &Dataset, filters: &Filters) -> Result<Discovery, DatasetError> {
    let selection = Selection::new(filters);
    let mut discovery = Discovery::default();
    let mut by_subject: BTreeMap<String, Vec<Input>> = BTreeMap::new();
    for entry in walk(&dataset.root) {
        let path = match entry {
            Ok(entry) => entry.into_path(),
            Err(e) => match unreadable_path(&e) {
                // An unreadable folder: a failure of the run, the rest goes on.
                Some(path) if path.is_dir() => {
                    discovery.unreadable.push(format!(
                        "{}: cannot read the folder: {}",
                        path.display(),
                        io_reason(&e)
                    ));
                    continue;
                }
                // A dangling symlink or an unreadable file: selected like any other file,
                // it fails alone when it is read.
                Some(path) => path.to_path_buf(),
                None => return Err(DatasetError::Walk(e.to_string())),
            },
        };
        match selection.input(&dataset.root, &path) {
            // Most subjects have one or two inputs: a first push would make room for four,
            // some 500 bytes per subject left empty while the whole dataset is planned.
            Ok(Some(input)) => by_subject
                .entry(input.subject.clone())
                .or_insert_with(|| Vec::with_capacity(1))
                .push(input),
            Ok(None) => {}
            Err(warning) => discovery.warnings.push(warning),
        }
    }
    discovery
        .warnings
        .extend(participant_warnings(&dataset.root, filters, &by_subject));
    discovery.subjects = by_subject
        .into_iter()
        .map(|(label, inputs)| {
            let mut sessions: Vec<String> =
                inputs.iter().filter_map(|i| i.session.clone()).collect();
            sessions.dedup();
            Subject {
                label,
                sessions,
                inputs,
            }
        })
        .collect();
    Ok(discovery)
}

/// The path a walk error is about, for errors that concern one path (not a symlink loop).
fn unreadable_path(e: &ignore::Error) -> Option<&Path> {
    match e {
        ignore::Error::WithPath { path, err } if err.io_error().is_some() => Some(path),
        ignore::Error::WithPath { err, .. } => unreadable_path(err),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            unreadable_path(err)
        }
        _ => None,
    }
}

/// The operating system's reason inside a walk error.
fn io_reason(e: &ignore::Error) -> String {
    e.io_error()
        .map_or_else(|| e.to_string(), |io| io.to_string())
}

/// Every path under `sub-*` down to `sub-*/ses-*/anat/<file>`, in name order.
fn walk(root: &Path) -> ignore::Walk {
    ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(true)
        .parents(false)
        .follow_links(true)
        .add_custom_ignore_filename(".bidsignore")
        .max_depth(Some(4))
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| {
            entry.depth() != 1 || entry.file_name().to_string_lossy().starts_with("sub-")
        })
        .build()
}

/// The filters, with the default suffix filled in.
struct Selection<'a> {
    filters: &'a Filters,
    suffixes: Vec<String>,
}

impl<'a> Selection<'a> {
    fn new(filters: &'a Filters) -> Self {
        let suffixes = if filters.suffixes.is_empty() {
            vec!["T1w".into()]
        } else {
            filters.suffixes.clone()
        };
        Selection { filters, suffixes }
    }

    /// The input at `path`, if it is a selected anatomical image; a warning if it looks like one
    /// but is misnamed.
    fn input(&self, root: &Path, path: &Path) -> Result<Option<Input>, String> {
        let relative = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        let components: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let (subject_dir, session_dir, file_name) = match components.as_slice() {
            [sub, anat, file] if anat == "anat" => (sub, None, file),
            [sub, ses, anat, file] if anat == "anat" && ses.starts_with("ses-") => {
                (sub, Some(ses), file)
            }
            _ => return Ok(None),
        };
        if !(file_name.ends_with(".nii") || file_name.ends_with(".nii.gz")) {
            return Ok(None);
        }
        let name = BidsName::parse(file_name)
            .map_err(|reason| format!("{}: skipped: {reason}", relative.display()))?;
        if !self.suffixes.contains(&name.suffix) {
            return Ok(None);
        }
        let subject = subject_dir.trim_start_matches("sub-").to_string();
        let session = session_dir.map(|s| s.trim_start_matches("ses-").to_string());
        if name.get("sub") != Some(subject.as_str()) || name.get("ses") != session.as_deref() {
            return Err(format!(
                "{}: skipped: sub/ses entities do not match the folders",
                relative.display()
            ));
        }
        if !self.wants(&subject, session.as_deref()) {
            return Ok(None);
        }
        Ok(Some(Input {
            path: path.to_path_buf(),
            relative,
            subject,
            session,
            name,
        }))
    }

    fn wants(&self, subject: &str, session: Option<&str>) -> bool {
        let listed = |list: &[String], prefix: &str, label: &str| {
            list.is_empty()
                || list
                    .iter()
                    .any(|l| l.strip_prefix(prefix).unwrap_or(l) == label)
        };
        let sessions = &self.filters.sessions;
        listed(&self.filters.participants, "sub-", subject)
            && match session {
                Some(s) => listed(sessions, "ses-", s),
                None => sessions.is_empty(),
            }
    }
}

/// Subjects listed in `participants.tsv` without a folder, and `--participant-label`s that
/// matched nothing.
fn participant_warnings(
    root: &Path,
    filters: &Filters,
    found: &BTreeMap<String, Vec<Input>>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    match read_participants(&root.join("participants.tsv")) {
        Ok(listed) => {
            for label in listed {
                if !root.join(format!("sub-{label}")).is_dir() {
                    warnings.push(format!(
                        "participants.tsv lists sub-{label}, which has no folder"
                    ));
                }
            }
        }
        Err(e) => warnings.push(e),
    }
    for label in &filters.participants {
        let label = label.strip_prefix("sub-").unwrap_or(label);
        if !found.contains_key(label) {
            warnings.push(format!(
                "--participant-label {label}: no matching input found"
            ));
        }
    }
    warnings
}
