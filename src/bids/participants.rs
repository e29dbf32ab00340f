//! Tolerant reading of `participants.tsv`.

use std::path::Path;

/// Larger than any real participants table.
const MAX_BYTES: u64 = 256 << 20;

/// Subject labels (without `sub-`) listed in `participants.tsv`, in file order. A missing file
/// gives an empty list; a UTF-8 byte-order mark, CRLF line ends, blank lines and `n/a` ids
/// are tolerated. Errors name the file.
pub fn read_participants(path: &Path) -> Result<Vec<String>, String> {
    let text = match neuro_batch_fsutil::read_regular_text(path, MAX_BYTES) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let header = lines.next().unwrap_or_default();
    let column = header
        .split('\t')
        .position(|h| h.trim() == "participant_id")
        .ok_or_else(|| format!("{}: no participant_id column", path.display()))?;
    Ok(lines
        .filter_map(|line| line.split('\t').nth(column))
        .map(str::trim)
        .filter(|id| !id.is_empty() && *id != "n/a")
        .map(|id| id.strip_prefix("sub-").unwrap_or(id).to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_bom_crlf_and_na() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("participants.tsv");
        std::fs::write(
            &p,
            "\u{feff}participant_id\tage\r\nsub-01\t30\r\nn/a\tn/a\r\n\r\nsub-02\tn/a\r\n",
        )
        .unwrap();
        assert_eq!(read_participants(&p).unwrap(), vec!["01", "02"]);
        assert_eq!(
            read_participants(&dir.path().join("none.tsv")).unwrap(),
            Vec::<String>::new()
        );
        std::fs::write(&p, "id\tage\n").unwrap();
        assert!(
            read_participants(&p)
                .unwrap_err()
                .contains("participant_id")
        );
    }
}
