//! `neuro-batch synth`.

use crate::cli::SynthArgs;
use crate::error::{ExitCode, Failure};
use crate::synth::{SynthSpec, generate};

pub(super) fn synth(args: SynthArgs) -> Result<ExitCode, Failure> {
    let usage = |msg: &str| Failure::new(ExitCode::Usage, anyhow::anyhow!("{msg}"));
    if args.shape.iter().any(|&d| !(8..=1024).contains(&d)) {
        return Err(usage("--shape extents must be between 8 and 1024"));
    }
    if args.voxel_size.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
        return Err(usage("--voxel-size must be positive"));
    }
    if !(0.0..1.0).contains(&args.size_jitter)
        || !(0.0..2.0).contains(&args.bias)
        || args.noise < 0.0
    {
        return Err(usage(
            "--size-jitter must be in [0,1), --bias in [0,2), --noise >= 0",
        ));
    }
    let length_ok = args.bias_length >= 1.0 && args.bias_length.is_finite();
    if !length_ok || !(1..=64).contains(&args.coils) {
        return Err(usage(
            "--bias-length must be at least 1 mm, --coils 1 to 64",
        ));
    }
    if args
        .acq_highres
        .is_some_and(|mm| !(mm > 0.0 && mm.is_finite()))
    {
        return Err(usage("--acq-highres must be a positive voxel size in mm"));
    }
    if let Some(mm) = args.acq_highres {
        let largest = (0..3)
            .map(|a| args.shape[a] as f32 * args.voxel_size[a] / mm * (1.0 + args.size_jitter))
            .fold(0.0, f32::max);
        if largest > 1024.0 {
            return Err(usage(&format!(
                "--acq-highres {mm} gives extents up to {largest:.0} voxels; the limit is 1024"
            )));
        }
    }
    let spec = SynthSpec {
        subjects: args.subjects,
        sessions: args.sessions,
        shape: args.shape,
        voxel_mm: args.voxel_size,
        size_jitter: args.size_jitter,
        bias: args.bias,
        bias_kind: args.bias_kind(),
        noise: args.noise,
        seed: args.seed,
        gzip: !args.no_gzip,
        contrast: args.contrast,
        gain: args.gain,
        orientation: args.orientation,
        highres_mm: args.acq_highres,
    };
    let written =
        generate(&args.out, &spec).map_err(|e| Failure::new(ExitCode::CannotCreateOutput, e))?;
    eprintln!(
        "neuro-batch synth: wrote {} images to {} (ground truth in {})",
        written.len(),
        args.out.display(),
        args.out.join("derivatives/truth").display()
    );
    Ok(ExitCode::Success)
}
