//! Tolerant reading of `participants.tsv`.

use std::collections::HashMap;
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

/// Longest participant value kept on a span.
const MAX_VALUE_CHARS: usize = 48;
/// A text column with more distinct values than this is an identifier, not a cause: it is left
/// out (numbers, such as ages, are kept whatever their count).
pub const MAX_CATEGORIES: usize = 64;

/// `(column, value)` pairs of one participant.
pub type ParticipantValues = Vec<(String, String)>;

/// Per subject label, the values of `columns` in `participants.tsv` (`n/a` and empty cells
/// left out, values cut to 48 characters); and warnings for columns the file lacks or that
/// look like identifiers. A missing file gives nothing and one warning.
pub fn read_participant_columns(
    path: &Path,
    columns: &[String],
) -> (HashMap<String, ParticipantValues>, Vec<String>) {
    let mut warnings = Vec::new();
    let text = match neuro_batch_fsutil::read_regular_text(path, MAX_BYTES) {
        Ok(t) => t,
        Err(e) => {
            warnings.push(format!(
                "{}: {e}: no participant attributes",
                path.display()
            ));
            return (HashMap::new(), warnings);
        }
    };
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(|l| l.trim_end_matches('\r'));
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(str::trim)
        .collect();
    let Some(id) = header.iter().position(|h| *h == "participant_id") else {
        warnings.push(format!("{}: no participant_id column", path.display()));
        return (HashMap::new(), warnings);
    };
    let mut wanted: Vec<(usize, &String)> = Vec::new();
    for column in columns {
        match header.iter().position(|h| h == column) {
            Some(i) => wanted.push((i, column)),
            None => warnings.push(format!("{} has no column {column:?}", path.display())),
        }
    }
    let mut values: HashMap<String, ParticipantValues> = HashMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
        let Some(label) = cells.get(id).filter(|c| !c.is_empty() && **c != "n/a") else {
            continue;
        };
        let label = label.strip_prefix("sub-").unwrap_or(label).to_owned();
        let entry = values.entry(label).or_default();
        for (i, column) in &wanted {
            if let Some(cell) = cells.get(*i).filter(|c| !c.is_empty() && **c != "n/a") {
                let cell: String = cell
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_VALUE_CHARS)
                    .collect();
                entry.push(((*column).clone(), cell));
            }
        }
    }
    for (_, column) in &wanted {
        let distinct: std::collections::HashSet<&str> = values
            .values()
            .flatten()
            .filter(|(c, _)| c == *column)
            .map(|(_, v)| v.as_str())
            .collect();
        if distinct.len() > MAX_CATEGORIES && distinct.iter().any(|v| v.parse::<f64>().is_err()) {
            warnings.push(format!(
                "participants.tsv column {column:?} has {} different values: an identifier, not \
                 recorded on spans",
                distinct.len()
            ));
            values
                .values_mut()
                .for_each(|v| v.retain(|(c, _)| c != *column));
        }
    }
    (values, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_read_per_subject_and_identifiers_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("participants.tsv");
        let mut tsv = String::from("participant_id\tsite\tage\tname\r\n");
        for i in 0..100 {
            let site = if i % 2 == 0 { "north" } else { "n/a" };
            tsv += &format!("sub-{i:03}\t{site}\t{}\tperson-{i}\r\n", 20 + i % 50);
        }
        std::fs::write(&p, tsv).unwrap();
        let columns = ["site", "age", "name", "weight"].map(String::from);
        let (values, warnings) = read_participant_columns(&p, &columns);
        assert_eq!(
            values["000"],
            [("site".into(), "north".into()), ("age".into(), "20".into())]
        );
        assert_eq!(values["001"], [("age".to_owned(), "21".to_owned())]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("\"weight\"")));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("\"name\"") && w.contains("identifier"))
        );
    }

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
