//! The flags of `synth` and `qc`.

use crate::synth::{AxisCodes, BiasKind};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Arguments of `neuro-batch qc`.
#[derive(Debug, Args)]
pub struct QcArgs {
    /// A neuro-batch output directory (pictures go to OUTPUT_DIR/qc/).
    pub output_dir: PathBuf,
    /// Subjects to draw, with or without "sub-" (default: all).
    #[arg(long, num_args = 1.., value_name = "LABEL")]
    pub participant_label: Vec<String>,
}

/// Arguments of `neuro-batch synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Directory to write the dataset into.
    pub out: PathBuf,
    /// Number of subjects.
    #[arg(long, default_value_t = 4)]
    pub subjects: usize,
    /// Sessions per subject (0: no session folders).
    #[arg(long, default_value_t = 0)]
    pub sessions: usize,
    /// Volume extents X,Y,Z.
    #[arg(long, value_parser = parse_triple::<usize>, default_value = "96,112,96")]
    pub shape: [usize; 3],
    /// Voxel size in mm, X,Y,Z.
    #[arg(long, value_parser = parse_triple::<f32>, default_value = "2,2,2")]
    pub voxel_size: [f32; 3],
    /// Per-subject size variation: extents scale by a factor in [1-J, 1+J].
    #[arg(long, default_value_t = 0.0)]
    pub size_jitter: f32,
    /// Strength of the multiplicative bias field: its peak-to-peak range inside the brain
    /// (0.4 = 40 % INU, the field spans 0.8-1.2).
    #[arg(long, default_value_t = 0.3)]
    pub bias: f32,
    /// Shape of the bias field: `poly` (a gradient and a central bump), `smooth` (that trend
    /// plus random variation with a correlation length of --bias-length), `coil` (the summed
    /// sensitivity of a ring of --coils receive loops).
    #[arg(long, value_enum, default_value_t = BiasKindArg::Poly)]
    pub bias_kind: BiasKindArg,
    /// Correlation length of the `smooth` field's variation, mm.
    #[arg(long, default_value_t = 30.0, value_name = "MM")]
    pub bias_length: f32,
    /// Receive loops of the `coil` field.
    #[arg(long, default_value_t = 8)]
    pub coils: usize,
    /// Rician noise level as a fraction of white-matter intensity.
    #[arg(long, default_value_t = 0.03)]
    pub noise: f32,
    /// Random seed (same seed, same dataset).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Grey/white contrast relative to a typical T1w (0.5 halves it).
    #[arg(long, default_value_t = 1.0)]
    pub contrast: f32,
    /// Scanner gain: white matter is about 1000 x GAIN [default: random 0.7-1.3 per subject].
    #[arg(long)]
    pub gain: Option<f32>,
    /// Voxel axis directions of the stored images, e.g. RAS, LPS, PIR.
    #[arg(long, default_value = "RAS", value_parser = AxisCodes::parse)]
    pub orientation: AxisCodes,
    /// Write uncompressed .nii instead of .nii.gz.
    #[arg(long)]
    pub no_gzip: bool,
    /// Scan subjects 3-4, 7-8, ... with a second protocol, `acq-highres`: MM isotropic voxels
    /// over the same field of view (more voxels, so slower to process, as a real
    /// high-resolution protocol is).
    #[arg(long, value_name = "MM")]
    pub acq_highres: Option<f32>,
}

/// `--bias-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BiasKindArg {
    /// A linear gradient plus a central bump.
    Poly,
    /// The trend plus Gaussian-smoothed random variation.
    Smooth,
    /// A receive coil array's summed sensitivities.
    Coil,
}

impl SynthArgs {
    /// The bias field shape the flags ask for.
    pub fn bias_kind(&self) -> BiasKind {
        match self.bias_kind {
            BiasKindArg::Poly => BiasKind::Poly,
            BiasKindArg::Smooth => BiasKind::Smooth {
                length_mm: self.bias_length,
            },
            BiasKindArg::Coil => BiasKind::Coil { coils: self.coils },
        }
    }
}

/// Parse `A,B,C` into three values.
fn parse_triple<T: std::str::FromStr>(text: &str) -> Result<[T; 3], String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(format!(
            "expected three comma-separated values, got '{text}'"
        ));
    };
    let parse = |s: &str| {
        s.parse::<T>()
            .map_err(|_| format!("'{s}' is not a valid number"))
    };
    Ok([parse(a)?, parse(b)?, parse(c)?])
}
