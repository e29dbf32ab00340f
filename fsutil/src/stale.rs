//! Removing the temporary files an interrupted run left behind.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::TEMP_PREFIX;

/// Removes the [`TEMP_PREFIX`] files directly in `dir` last modified at least `min_age` ago
/// (`Duration::ZERO`: all of them, for folders no other process writes to); other files are
/// never touched. Returns how many were removed; a missing `dir` has none.
pub fn remove_stale_temp_files(dir: &Path, min_age: Duration) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let metadata = entry.metadata()?;
        let age = metadata
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        if metadata.is_file() && age >= min_age {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_files_of_our_naming_go() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join(format!("{TEMP_PREFIX}abc"));
        let theirs = dir.path().join(".other-tmp-abc");
        let output = dir.path().join("sub-01_T1w.nii.gz");
        for p in [&ours, &theirs, &output] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(
            remove_stale_temp_files(dir.path(), Duration::from_secs(3600)).unwrap(),
            0,
            "a fresh temporary file may belong to a running writer"
        );
        assert_eq!(
            remove_stale_temp_files(dir.path(), Duration::ZERO).unwrap(),
            1
        );
        assert!(!ours.exists() && theirs.exists() && output.exists());
        assert_eq!(
            remove_stale_temp_files(&dir.path().join("none"), Duration::ZERO).unwrap(),
            0
        );
    }
}
