//! Atomic writes: a temporary file in the target's directory, synced, then renamed into place.

use std::io::Write;
use std::path::Path;

use crate::TEMP_PREFIX;

/// Write `bytes` to `path` through a temporary file in the same directory, synced before
/// the rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Write through `write` into a temporary file in `path`'s directory, sync it, and rename it
/// to `path`; on any error the temporary file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = temp_builder().tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Write `value` as pretty JSON (with a final newline) through [`write_atomic_with`],
/// serialised straight into a buffered file: a run report of 10 000 subjects is 33 MB of JSON
/// that need not be held in memory beside the records it is made from.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    write_atomic_with(path, |file| {
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        out.flush()
    })
}

/// Temporary files for atomic writes: [`TEMP_PREFIX`] names, and ordinary permissions (0666
/// less the umask) instead of tempfile's private 0600, so outputs are readable as usual.
pub fn temp_builder() -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_json_atomic(&path, &serde_json::json!({"k": 1})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"k\": 1\n}\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }
}
