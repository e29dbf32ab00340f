//! BIDS file names: `key-value` entities in specification order, a suffix, an extension.

use std::fmt;

/// Entities in the order the BIDS specification (1.10) puts them in file names.
pub const ENTITY_ORDER: &[&str] = &[
    "sub",
    "ses",
    "sample",
    "task",
    "tracksys",
    "acq",
    "nuc",
    "voi",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "mt",
    "part",
    "proc",
    "hemi",
    "space",
    "split",
    "recording",
    "chunk",
    "seg",
    "res",
    "den",
    "label",
    "desc",
];

/// A parsed BIDS file name such as `sub-01_ses-2_acq-mprage_run-1_T1w.nii.gz`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BidsName {
    /// `(key, value)` pairs in specification order.
    pub entities: Vec<(String, String)>,
    /// The suffix, e.g. `T1w`.
    pub suffix: String,
    /// The extension including the dot, e.g. `.nii.gz`.
    pub extension: String,
}

impl BidsName {
    /// Parse a file name. Unknown entity keys, missing values, duplicate keys and names without a
    /// suffix are errors; entities out of order are accepted and stored in spec order.
    pub fn parse(file_name: &str) -> Result<Self, String> {
        let (stem, extension) = match file_name.find('.') {
            Some(dot) => (&file_name[..dot], &file_name[dot..]),
            None => (file_name, ""),
        };
        let mut parts: Vec<&str> = stem.split('_').collect();
        let suffix = parts.pop().filter(|s| !s.is_empty() && !s.contains('-'));
        let suffix = suffix.ok_or_else(|| "no suffix after the last '_'".to_string())?;
        let mut entities = Vec::with_capacity(parts.len());
        for part in parts {
            let (key, value) = part
                .split_once('-')
                .ok_or_else(|| format!("'{part}' is not a key-value entity"))?;
            if !ENTITY_ORDER.contains(&key) {
                return Err(format!("unknown entity '{key}'"));
            }
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("entity '{key}' has an invalid label '{value}'"));
            }
            if entities.iter().any(|(k, _): &(String, String)| k == key) {
                return Err(format!("entity '{key}' appears twice"));
            }
            entities.push((key.to_string(), value.to_string()));
        }
        entities.sort_by_key(|(k, _)| ENTITY_ORDER.iter().position(|e| e == k));
        Ok(Self {
            entities,
            suffix: suffix.to_string(),
            extension: extension.to_string(),
        })
    }

    /// The value of entity `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entities
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A copy with entity `key` set to `value` (kept in specification order).
    pub fn with_entity(&self, key: &str, value: &str) -> Self {
        let mut out = self.clone();
        out.entities.retain(|(k, _)| k != key);
        out.entities.push((key.to_string(), value.to_string()));
        out.entities
            .sort_by_key(|(k, _)| ENTITY_ORDER.iter().position(|e| e == k));
        out
    }

    /// A copy with a different suffix and extension.
    pub fn with_suffix(&self, suffix: &str, extension: &str) -> Self {
        Self {
            suffix: suffix.to_string(),
            extension: extension.to_string(),
            ..self.clone()
        }
    }
}

impl fmt::Display for BidsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.entities {
            write!(f, "{k}-{v}_")?;
        }
        write!(f, "{}{}", self.suffix, self.extension)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_entities() {
        let n = BidsName::parse("sub-01_run-2_ses-pre_acq-mp2rage_T1w.nii.gz").unwrap();
        assert_eq!(n.get("sub"), Some("01"));
        assert_eq!(n.suffix, "T1w");
        assert_eq!(n.extension, ".nii.gz");
        assert_eq!(n.to_string(), "sub-01_ses-pre_acq-mp2rage_run-2_T1w.nii.gz");
        let d = n.with_entity("desc", "preproc");
        assert_eq!(
            d.to_string(),
            "sub-01_ses-pre_acq-mp2rage_run-2_desc-preproc_T1w.nii.gz"
        );
        assert_eq!(
            n.with_entity("desc", "brain")
                .with_suffix("mask", ".json")
                .to_string(),
            "sub-01_ses-pre_acq-mp2rage_run-2_desc-brain_mask.json"
        );
    }

    #[test]
    fn rejects_malformed_names() {
        assert!(BidsName::parse("sub-01_foo-1_T1w.nii").is_err());
        assert!(BidsName::parse("sub-01_ses_T1w.nii").is_err());
        assert!(BidsName::parse("sub-01_sub-02_T1w.nii").is_err());
        assert!(BidsName::parse("sub-0_1_T1w.nii").is_err());
        assert!(BidsName::parse("sub-01.nii").is_err());
    }
}
