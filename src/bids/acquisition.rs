//! How a scan was acquired, from its BIDS sidecar JSON: the scanner's maker, model and field
//! strength. In a real study the T1w files are nearly the same size; what varies between slow
//! and fast subjects is the scanner and the protocol, so these become span attributes the
//! ranking can test. Values are cut to a few dozen characters so that a broken sidecar cannot
//! make a label of unbounded cardinality or size.

use std::path::Path;

use serde_json::Value;

/// Sidecars larger than this are not read (real ones are a few KB).
const MAX_SIDECAR_BYTES: u64 = 1 << 20;
/// Longest value kept.
const MAX_VALUE_CHARS: usize = 48;

/// What the sidecar says, when it says it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acquisition {
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `ManufacturersModelName`.
    pub model: Option<String>,
    /// `MagneticFieldStrength`, tesla.
    pub field_strength_t: Option<f64>,
}

/// The facts of `image` (a `.nii` or `.nii.gz`): from its own sidecar (`<stem>.json` beside
/// it), each missing one from the dataset-level `<suffix>.json` at `root` (BIDS inheritance).
/// Unreadable or malformed sidecars give nothing: they do not fail the input.
pub fn read(image: &Path, root: &Path, suffix: &str) -> Acquisition {
    let own = sidecar_of(image).and_then(|p| fields(&p));
    let dataset = fields(&root.join(format!("{suffix}.json")));
    let (own, dataset) = (own.unwrap_or_default(), dataset.unwrap_or_default());
    Acquisition {
        manufacturer: own.manufacturer.or(dataset.manufacturer),
        model: own.model.or(dataset.model),
        field_strength_t: own.field_strength_t.or(dataset.field_strength_t),
    }
}

/// `sub-01_T1w.nii.gz` → `sub-01_T1w.json`.
fn sidecar_of(image: &Path) -> Option<std::path::PathBuf> {
    let name = image.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))?;
    Some(image.with_file_name(format!("{stem}.json")))
}

fn fields(path: &Path) -> Option<Acquisition> {
    let text = neuro_batch_fsutil::read_regular_text(path, MAX_SIDECAR_BYTES).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    let text_of = |key: &str| {
        let value: String = json
            .get(key)?
            .as_str()?
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_VALUE_CHARS)
            .collect();
        let value = value.trim().to_owned();
        (!value.is_empty()).then_some(value)
    };
    Some(Acquisition {
        manufacturer: text_of("Manufacturer"),
        model: text_of("ManufacturersModelName"),
        field_strength_t: json
            .get("MagneticFieldStrength")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 100.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_sidecar_wins_and_the_dataset_one_fills_in() {
        let dir = tempfile::tempdir().unwrap();
        let anat = dir.path().join("sub-01/anat");
        std::fs::create_dir_all(&anat).unwrap();
        let image = anat.join("sub-01_T1w.nii.gz");
        std::fs::write(
            anat.join("sub-01_T1w.json"),
            r#"{"Manufacturer": "GE", "MagneticFieldStrength": 1.5}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("T1w.json"),
            r#"{"Manufacturer": "Siemens", "ManufacturersModelName": "Prisma", "MagneticFieldStrength": 3}"#,
        )
        .unwrap();
        let a = read(&image, dir.path(), "T1w");
        assert_eq!(a.manufacturer.as_deref(), Some("GE"));
        assert_eq!(a.model.as_deref(), Some("Prisma"));
        assert_eq!(a.field_strength_t, Some(1.5));
    }

    #[test]
    fn broken_or_hostile_sidecars_give_bounded_facts_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("sub-01_T1w.nii");
        std::fs::write(dir.path().join("sub-01_T1w.json"), "{not json").unwrap();
        assert_eq!(read(&image, dir.path(), "T1w"), Acquisition::default());
        let long = "x".repeat(10_000);
        std::fs::write(
            dir.path().join("sub-01_T1w.json"),
            format!(r#"{{"Manufacturer": "{long}\n", "MagneticFieldStrength": -3}}"#),
        )
        .unwrap();
        let a = read(&image, dir.path(), "T1w");
        assert_eq!(a.manufacturer.unwrap().chars().count(), MAX_VALUE_CHARS);
        assert_eq!(a.field_strength_t, None);
    }
}
