//! Stage quality on phantoms with ground truth: brain-mask Dice and bias-field error.
//! Quality is deterministic (fixed seeds), so thresholds are asserted.

mod common;

use common::*;
use neuro_batch::synth::{BiasKind, FieldShape};
use neuro_batch::volume::{read_volume, write_image};
use rand::SeedableRng;
use std::path::Path;

/// RMS of (estimated / true field − 1) inside the true brain, up to a global scale.
fn field_rms_error(estimated: &Path, truth: &Path, brain: &Path) -> f64 {
    let (e, _) = read_volume(estimated).unwrap();
    let (t, _) = read_volume(truth).unwrap();
    let (m, _) = read_volume(brain).unwrap();
    let ratios: Vec<f64> = e
        .data
        .iter()
        .zip(t.data.iter())
        .zip(m.data.iter())
        .filter(|(_, m)| **m > 0.0)
        .map(|((e, t), _)| *e as f64 / *t as f64)
        .collect();
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    (ratios.iter().map(|r| (r / mean - 1.0).powi(2)).sum::<f64>() / ratios.len() as f64).sqrt()
}

/// Two phantoms with a `kind` field of strength `bias`: the estimated field is within `limit`
/// (RMS, up to scale) of the true one inside the brain, and the brain mask is right.
fn check(kind: &str, bias: &str, voxel: &str, shape: &str, seed: &str, limit: f64) {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    synth(
        &bids,
        &[
            "--subjects",
            "2",
            "--shape",
            shape,
            "--voxel-size",
            voxel,
            "--bias",
            bias,
            "--bias-kind",
            kind,
            "--seed",
            seed,
        ],
    );
    let (code, _, stderr) = run(&bids, &out, &["--save-intermediates"]);
    assert_eq!(code, 0, "{stderr}");
    for sub in ["01", "02"] {
        let truth = bids.join(format!("derivatives/truth/sub-{sub}/anat"));
        let anat = out.join(format!("sub-{sub}/anat"));
        let brain = truth.join(format!("sub-{sub}_desc-brain_mask.nii.gz"));
        let rms = field_rms_error(
            &anat.join(format!("sub-{sub}_desc-biasfield_T1w.nii.gz")),
            &truth.join(format!("sub-{sub}_desc-biasfield_T1w.nii.gz")),
            &brain,
        );
        let d = dice(
            &anat.join(format!("sub-{sub}_desc-brain_mask.nii.gz")),
            &brain,
        );
        eprintln!(
            "{kind} bias {bias}, voxels {voxel}: sub-{sub} field RMS error {:.2} %, Dice {d:.4}",
            rms * 100.0
        );
        assert!(
            rms <= limit,
            "{kind} bias {bias}, voxels {voxel}, sub-{sub}: field RMS error {:.2} % > {:.2} %",
            rms * 100.0,
            limit * 100.0
        );
        assert!(
            d >= 0.95,
            "{kind} bias {bias}, voxels {voxel}, sub-{sub}: Dice {d:.4}"
        );
    }
}

// Errors measured when the limits were set (sub-01, sub-02), for the record; the limits leave
// a margin for floating-point differences between machines, not for a worse method.

/// 0.26 %, 0.24 % (the polynomial model before the B-spline: 0.44–0.56 %).
#[test]
fn field_within_one_percent_at_20_percent_inu() {
    check("poly", "0.2", "2,2,2", "96,112,96", "21", 0.01);
}

/// 0.44 %, 0.36 % (the polynomial model: 0.51–0.86 %).
#[test]
fn field_within_one_percent_at_40_percent_inu() {
    check("poly", "0.4", "2,2,2", "96,112,96", "41", 0.01);
}

/// 0.44 %, 0.32 %.
#[test]
fn anisotropic_voxels_at_40_percent_inu() {
    check("poly", "0.4", "2,2,3", "96,112,64", "43", 0.01);
}

/// A smooth random field (30 mm correlation length): 0.66 %, 0.61 %.
#[test]
fn smooth_random_field_at_40_percent_inu_anisotropic() {
    check("smooth", "0.4", "2,2,3", "96,112,64", "43", 0.01);
}

/// At 1 mm: 1.12 %, 1.22 % — over the 1 % goal, level with N4 (SimpleITK, shrink 4, 4 × 50
/// iterations, same masks) on the same images: 1.13 %, 1.20 %. Asserted at what holds.
#[test]
fn smooth_random_field_at_40_percent_inu_1mm() {
    check("smooth", "0.4", "1,1,1", "160,192,160", "41", 0.013);
}

/// An 8-loop receive array: 0.98 %, 0.97 % (N4 on the same images: 1.24 %, 1.46 %).
#[test]
fn coil_array_field_at_40_percent_inu_anisotropic() {
    check("coil", "0.4", "2,2,3", "96,112,64", "43", 0.01);
}

/// 0.66 %, 0.70 % at 20 %.
#[test]
fn coil_array_field_at_20_percent_inu_anisotropic() {
    check("coil", "0.2", "2,2,3", "96,112,64", "23", 0.01);
}

/// At 1 mm the phantoms' coil field is the hardest case: 1.79 %, 1.86 % — over the 1 % goal,
/// level with N4 on the same images (1.74 %, 1.85 %). Asserted at what holds.
#[test]
fn coil_array_field_at_40_percent_inu_1mm() {
    check("coil", "0.4", "1,1,1", "160,192,160", "41", 0.02);
}

/// A real head (the ITK sample, 2×2×3 mm, 8-bit) with a known 40 % field multiplied in. The
/// head has a field of its own, unknown; so the field estimated on the biased copy, divided by
/// the one estimated on the original, is compared with the known field, inside the reference
/// brain. Measured: 3.00 % (smooth), 3.52 % (coil); N4 on such images: 4.80 %, 2.96 %. This
/// small low-resolution head is hard for both; on a 1 mm real-anatomy head (MNI152, not
/// shipped) the errors are 0.96 % and 0.64 % (N4: 1.02 %, 0.83 %) — see the README.
#[test]
fn a_known_field_on_a_real_head_is_recovered() {
    for (kind, limit) in [
        (BiasKind::Smooth { length_mm: 30.0 }, 0.05),
        (BiasKind::Coil { coils: 8 }, 0.05),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let bids = tmp.path().join("bids");
        let out = tmp.path().join("out");
        bids_root(&bids);
        let original = sample_data().join("sub-itk/anat/sub-itk_T1w.nii.gz");
        let reference =
            sample_data().join("derivatives/truth/sub-itk/anat/sub-itk_desc-brain_mask.nii.gz");
        let (head, _) = read_volume(&original).unwrap();
        let (brain, _) = read_volume(&reference).unwrap();
        let known = known_field(&head.data, &brain.data, head.spacing_mm, kind, 0.4);
        for (sub, image) in [("orig", head.data.clone()), ("biased", &head.data * &known)] {
            let dir = bids.join(format!("sub-{sub}/anat"));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("sub-{sub}_T1w.nii.gz"));
            write_image(&path, &head.header, &image, 1).unwrap();
        }
        let (code, _, stderr) = run(&bids, &out, &["--save-intermediates"]);
        assert_eq!(code, 0, "{stderr}");
        let field = |sub: &str| {
            let path = out.join(format!(
                "sub-{sub}/anat/sub-{sub}_desc-biasfield_T1w.nii.gz"
            ));
            read_volume(&path).unwrap().0.data
        };
        let recovered = field("biased") / field("orig");
        let ratios: Vec<f64> = recovered
            .iter()
            .zip(&known)
            .zip(&brain.data)
            .filter(|(_, m)| **m > 0.0)
            .map(|((r, k), _)| *r as f64 / *k as f64)
            .collect();
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let rms = (ratios.iter().map(|r| (r / mean - 1.0).powi(2)).sum::<f64>()
            / ratios.len() as f64)
            .sqrt();
        eprintln!(
            "real head, {kind:?} at 40 %: field RMS error {:.2} %",
            rms * 100.0
        );
        assert!(rms <= limit, "{kind:?}: {:.2} %", rms * 100.0);
    }
}

/// A `kind` field over the image's extent, scaled to `bias` peak to peak inside `brain`.
fn known_field(
    image: &ndarray::Array3<f32>,
    brain: &ndarray::Array3<f32>,
    spacing: [f32; 3],
    kind: BiasKind,
    bias: f32,
) -> ndarray::Array3<f32> {
    let dims = image.dim();
    let dims = [dims.0, dims.1, dims.2];
    let semi: [f32; 3] = std::array::from_fn(|a| 0.5 * dims[a] as f32 * spacing[a]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let shape = FieldShape::new(kind, semi, &mut rng);
    let raw = ndarray::Array3::from_shape_fn(image.raw_dim(), |(x, y, z)| {
        let mm: [f32; 3] = std::array::from_fn(|a| {
            ([x, y, z][a] as f32 - (dims[a] as f32 - 1.0) / 2.0) * spacing[a]
        });
        let u: [f32; 3] = std::array::from_fn(|a| mm[a] / semi[a]);
        shape.at(u, u.iter().map(|v| v * v).sum::<f32>().sqrt(), mm)
    });
    let (lo, hi) = raw
        .iter()
        .zip(brain)
        .filter(|(_, m)| **m > 0.0)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (&v, _)| {
            (lo.min(v), hi.max(v))
        });
    raw.mapv(|v| (1.0 + bias * (v - (lo + hi) / 2.0) / (hi - lo)).max(0.2))
}

/// The same tissue lands at the same value across subjects with different gain, bias and
/// size: the spread of the white-matter median after normalization.
#[test]
fn white_matter_median_is_stable_across_subjects() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    synth(
        &bids,
        &[
            "--subjects",
            "16",
            "--shape",
            "48,56,48",
            "--voxel-size",
            "4,4,4",
            "--bias",
            "0.3",
            "--size-jitter",
            "0.15",
            "--seed",
            "16",
        ],
    );
    let (code, _, stderr) = run(&bids, &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    let mut medians = Vec::new();
    for s in 1..=16 {
        let sub = format!("sub-{s:02}");
        let (pre, _) =
            read_volume(&out.join(format!("{sub}/anat/{sub}_desc-preproc_T1w.nii.gz"))).unwrap();
        let (labels, _) = read_volume(&bids.join(format!(
            "derivatives/truth/{sub}/anat/{sub}_desc-tissue_dseg.nii.gz"
        )))
        .unwrap();
        let mut wm: Vec<f32> = pre
            .data
            .iter()
            .zip(labels.data.iter())
            .filter(|(_, l)| **l == 3.0)
            .map(|(v, _)| *v)
            .collect();
        wm.sort_by(f32::total_cmp);
        medians.push(wm[wm.len() / 2] as f64);
    }
    let mean = medians.iter().sum::<f64>() / medians.len() as f64;
    let sd =
        (medians.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / medians.len() as f64).sqrt();
    let (lo, hi) = medians
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), m| (lo.min(*m), hi.max(*m)));
    eprintln!("WM median over 16 subjects: mean {mean:.4}, sd {sd:.4}, range {lo:.4}-{hi:.4}");
    assert!(
        (mean - 1.0).abs() < 0.05,
        "white matter lands near 1.0: {mean}"
    );
    assert!(sd < 0.02, "WM median spread across subjects: sd {sd}");
}

/// One default skull strip across orientations, voxel sizes, brightness, noise, contrast
/// and bias: Dice >= 0.95 against the true brain everywhere, never a collapse.
#[test]
fn skull_strip_holds_across_orientation_intensity_noise_and_contrast() {
    let cases: [(&str, &[&str]); 8] = [
        (
            "LPS",
            &[
                "--shape",
                "96,112,96",
                "--voxel-size",
                "2,2,2",
                "--orientation",
                "LPS",
            ],
        ),
        (
            "PIR 2x2x3 mm",
            &[
                "--shape",
                "96,112,64",
                "--voxel-size",
                "2,2,3",
                "--orientation",
                "PIR",
            ],
        ),
        (
            "1 mm isotropic",
            &["--shape", "150,180,150", "--voxel-size", "1,1,1"],
        ),
        (
            "dim",
            &[
                "--shape",
                "96,112,96",
                "--voxel-size",
                "2,2,2",
                "--gain",
                "0.05",
            ],
        ),
        (
            "bright",
            &[
                "--shape",
                "96,112,96",
                "--voxel-size",
                "2,2,2",
                "--gain",
                "25",
            ],
        ),
        (
            "noisy",
            &[
                "--shape",
                "96,112,96",
                "--voxel-size",
                "2,2,2",
                "--noise",
                "0.08",
            ],
        ),
        (
            "low contrast",
            &[
                "--shape",
                "96,112,96",
                "--voxel-size",
                "2,2,2",
                "--contrast",
                "0.5",
            ],
        ),
        (
            "60 % INU",
            &[
                "--shape",
                "96,112,96",
                "--voxel-size",
                "2,2,2",
                "--bias",
                "0.6",
            ],
        ),
    ];
    for (name, args) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let bids = tmp.path().join("bids");
        let out = tmp.path().join("out");
        synth(&bids, &[&["--subjects", "1", "--seed", "9"], args].concat());
        let (code, _, stderr) = run(&bids, &out, &[]);
        assert_eq!(code, 0, "{name}: {stderr}");
        let d = dice(
            &out.join("sub-01/anat/sub-01_desc-brain_mask.nii.gz"),
            &bids.join("derivatives/truth/sub-01/anat/sub-01_desc-brain_mask.nii.gz"),
        );
        eprintln!("{name}: Dice {d:.4}");
        assert!(d >= 0.95, "{name}: Dice {d:.4}");
    }
}
