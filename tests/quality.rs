//! Stage quality on phantoms with ground truth: brain-mask Dice and bias-field error.
//! Quality is deterministic (fixed seeds), so thresholds are asserted.

mod common;

use common::*;
use neuro_batch::volume::read_volume;
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

fn check(bias: &str, voxel: &str, shape: &str, seed: &str) {
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
            "bias {bias}, voxels {voxel}: sub-{sub} field RMS error {:.2} %, Dice {d:.4}",
            rms * 100.0
        );
        assert!(
            rms <= 0.01,
            "bias {bias}, voxels {voxel}, sub-{sub}: field RMS error {:.2} % > 1 %",
            rms * 100.0
        );
        assert!(
            d >= 0.95,
            "bias {bias}, voxels {voxel}, sub-{sub}: Dice {d:.4}"
        );
    }
}

#[test]
fn field_within_one_percent_at_20_percent_inu() {
    check("0.2", "2,2,2", "96,112,96", "21");
}

#[test]
fn field_within_one_percent_at_40_percent_inu() {
    check("0.4", "2,2,2", "96,112,96", "41");
}

#[test]
fn anisotropic_voxels_at_40_percent_inu() {
    check("0.4", "2,2,3", "96,112,64", "43");
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
