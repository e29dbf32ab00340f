//! `neuro-batch synth`: a BIDS dataset of head phantoms with ground truth.
//!
//! Each subject is a layered head (scalp fat, skull, CSF, folded grey matter, white matter,
//! ventricles) with partial-volume blur, a multiplicative bias field of known shape
//! ([`BiasKind`]: low-order, smooth random, or a receive coil array) and strength, a per-subject gain and Rician noise, stored as int16 `.nii.gz`. The true brain
//! mask, tissue labels (`desc-tissue_dseg`: 1 CSF, 2 GM, 3 WM, 4 scalp/skull) and the true
//! field go to `derivatives/truth/`.

mod field;
mod orientation;
mod phantom;

pub use field::{BiasKind, FieldShape};
pub use orientation::AxisCodes;

pub use phantom::{Phantom, PhantomParams, synthesize};

use crate::derivatives::{DatasetDescription, description};
use crate::volume::{VolumeError, write_image};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Number of subjects (`sub-01`...).
    pub subjects: usize,
    /// Sessions per subject (0 = no session level).
    pub sessions: usize,
    /// Base volume extents.
    pub shape: [usize; 3],
    /// Voxel size, mm.
    pub voxel_mm: [f32; 3],
    /// Each subject's extents are scaled by a factor drawn from `[1 - j, 1 + j]`.
    pub size_jitter: f32,
    /// Bias-field strength: peak-to-peak range inside the brain (0.4 = 40 % INU).
    pub bias: f32,
    /// Bias-field shape.
    pub bias_kind: BiasKind,
    /// Rician noise, as a fraction of white-matter intensity.
    pub noise: f32,
    /// Seed; the same seed gives byte-identical datasets.
    pub seed: u64,
    /// Grey/white contrast relative to a typical T1w (1.0; 0.5 halves it).
    pub contrast: f32,
    /// Scanner gain (white matter ≈ 1000 × gain); random in 0.7–1.3 when `None`.
    pub gain: Option<f32>,
    /// Voxel axis order and directions of the stored images.
    pub orientation: AxisCodes,
    /// Write `.nii.gz` (otherwise `.nii`).
    pub gzip: bool,
    /// A second protocol, `acq-highres`, at this isotropic voxel size (mm) over the same field
    /// of view, for subjects 3-4, 7-8, ... (so it varies apart from the two scanners, which
    /// alternate by subject).
    pub highres_mm: Option<f32>,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A directory or JSON file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A volume could not be written.
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// The sidecars of the two "scanners" subjects alternate between, so a run over a synthetic
/// dataset has the acquisition facts a real study varies in.
const SCANNERS: [&str; 2] = [
    "{\n  \"Manufacturer\": \"Siemens\",\n  \"ManufacturersModelName\": \"Prisma\",\n  \"MagneticFieldStrength\": 3\n}\n",
    "{\n  \"Manufacturer\": \"GE\",\n  \"ManufacturersModelName\": \"SIGNA Artist\",\n  \"MagneticFieldStrength\": 1.5\n}\n",
];

/// Write the dataset described by `spec` under `out`; returns the image paths written.
pub fn generate(out: &Path, spec: &SynthSpec) -> Result<Vec<PathBuf>, SynthError> {
    let truth_root = out.join("derivatives/truth");
    std::fs::create_dir_all(&truth_root).map_err(io(&truth_root))?;
    DatasetDescription::synthetic("neuro-batch synthetic head phantoms", "raw", Some("CC0"))
        .write(out)
        .map_err(io(&out.join(description::FILE_NAME)))?;
    DatasetDescription::synthetic("Ground truth of the synthetic phantoms", "derivative", None)
        .write(&truth_root)
        .map_err(io(&truth_root.join(description::FILE_NAME)))?;

    let mut participants = String::from("participant_id\n");
    let mut written = Vec::new();
    for s in 1..=spec.subjects {
        let label = format!("{s:02}");
        participants.push_str(&format!("sub-{label}\n"));
        let sessions: Vec<Option<String>> = if spec.sessions == 0 {
            vec![None]
        } else {
            (1..=spec.sessions).map(|k| Some(k.to_string())).collect()
        };
        for (k, session) in sessions.iter().enumerate() {
            let seed = spec.seed ^ ((s as u64) << 32) ^ k as u64;
            let highres = spec.highres_mm.filter(|_| (s - 1) / 2 % 2 == 1);
            let phantom = synthesize(&params(spec, highres, seed));
            let mut rel = PathBuf::from(format!("sub-{label}"));
            let mut stem = format!("sub-{label}");
            if let Some(ses) = session {
                rel.push(format!("ses-{ses}"));
                stem.push_str(&format!("_ses-{ses}"));
            }
            if highres.is_some() {
                stem.push_str("_acq-highres");
            }
            rel.push("anat");
            written.push(write_subject(
                &out.join(&rel),
                &truth_root.join(&rel),
                &stem,
                &phantom,
                spec,
                highres.map_or(spec.voxel_mm, |mm| [mm; 3]),
            )?);
            let scanner = &SCANNERS[(s - 1) % SCANNERS.len()];
            let sidecar = out.join(&rel).join(format!("{stem}_T1w.json"));
            neuro_batch_fsutil::write_atomic(&sidecar, scanner.as_bytes()).map_err(io(&sidecar))?;
        }
    }
    let tsv = out.join("participants.tsv");
    neuro_batch_fsutil::write_atomic(&tsv, participants.as_bytes()).map_err(io(&tsv))?;
    Ok(written)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError {
    let path = path.to_path_buf();
    move |source| SynthError::Io { path, source }
}

/// One image's phantom: the spec's settings with a size and gain drawn from `seed`; a
/// high-resolution acquisition (`highres` mm, isotropic) covers the same field of view in
/// smaller voxels.
fn params(spec: &SynthSpec, highres: Option<f32>, seed: u64) -> PhantomParams {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let scale = 1.0 + spec.size_jitter * (2.0 * rng.random::<f32>() - 1.0);
    let voxel_mm = highres.map_or(spec.voxel_mm, |mm| [mm; 3]);
    let mut axis = 0;
    PhantomParams {
        shape: spec.shape.map(|d| {
            let fov = d as f32 * spec.voxel_mm[axis] / voxel_mm[axis];
            axis += 1;
            ((fov * scale).round() as usize).max(8)
        }),
        voxel_mm,
        bias: spec.bias,
        bias_kind: spec.bias_kind,
        noise: spec.noise,
        gain: spec.gain.unwrap_or_else(|| 0.7 + 0.6 * rng.random::<f32>()),
        contrast: spec.contrast,
        seed,
    }
}

/// Writes the image `<stem>_T1w` into `dir` and its truth (brain mask, tissue labels, bias
/// field) into `truth_dir`; returns the image's path.
fn write_subject(
    dir: &Path,
    truth_dir: &Path,
    stem: &str,
    phantom: &Phantom,
    spec: &SynthSpec,
    voxel_mm: [f32; 3],
) -> Result<PathBuf, SynthError> {
    for d in [dir, truth_dir] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let ext = if spec.gzip { ".nii.gz" } else { ".nii" };
    let o = spec.orientation;
    let image_data = o.apply(&phantom.image);
    let [dx, dy, dz] = [image_data.dim().0, image_data.dim().1, image_data.dim().2];
    let header = o.header([dx, dy, dz], voxel_mm);
    let image = dir.join(format!("{stem}_T1w{ext}"));
    write_image(&image, &header, &image_data, 6)?;
    write_image(
        &truth_dir.join(format!("{stem}_desc-brain_mask.nii.gz")),
        &header,
        &o.apply(&phantom.brain_mask),
        6,
    )?;
    write_image(
        &truth_dir.join(format!("{stem}_desc-tissue_dseg.nii.gz")),
        &header,
        &o.apply(&phantom.tissue),
        6,
    )?;
    write_image(
        &truth_dir.join(format!("{stem}_desc-biasfield_T1w.nii.gz")),
        &header,
        &o.apply(&phantom.bias_field),
        6,
    )?;
    Ok(image)
}
