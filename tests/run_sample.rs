//! End to end on the bundled sample dataset: outputs, geometry, mask quality, validator,
//! resume and overwrite.

mod common;

use common::*;
use neuro_batch::volume::read_volume;

#[test]
fn sample_dataset_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let data = sample_data();

    let (code, _, stderr) = run(&data, &out, &["--threads", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("3 ok, 0 failed"), "{stderr}");

    // Every input has a preproc image, a mask and sidecars, on the input's grid.
    for sub in ["01", "02", "itk"] {
        let anat = out.join(format!("sub-{sub}/anat"));
        let input = data.join(format!("sub-{sub}/anat/sub-{sub}_T1w.nii.gz"));
        let preproc = anat.join(format!("sub-{sub}_desc-preproc_T1w.nii.gz"));
        let mask = anat.join(format!("sub-{sub}_desc-brain_mask.nii.gz"));
        for p in [&preproc, &mask] {
            assert!(p.is_file(), "missing {}", p.display());
        }
        for sidecar in ["desc-preproc_T1w.json", "desc-brain_mask.json"] {
            let p = anat.join(format!("sub-{sub}_{sidecar}"));
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert_eq!(
                json["Sources"][0],
                format!("bids:raw:sub-{sub}/anat/sub-{sub}_T1w.nii.gz")
            );
        }
        let (src, _) = read_volume(&input).unwrap();
        for p in [&preproc, &mask] {
            let (v, info) = read_volume(p).unwrap();
            assert_eq!(v.data.shape(), src.data.shape(), "{}", p.display());
            assert_eq!(
                v.header.srow_x,
                src.header.srow_x,
                "sform kept in {}",
                p.display()
            );
            assert_eq!(v.header.srow_y, src.header.srow_y);
            assert_eq!(v.header.srow_z, src.header.srow_z);
            assert_eq!(v.header.sform_code, src.header.sform_code);
            assert_eq!(v.header.qform_code, src.header.qform_code);
            assert_eq!(
                [
                    v.header.quatern_b,
                    v.header.quatern_c,
                    v.header.quatern_d,
                    v.header.quatern_x
                ],
                [
                    src.header.quatern_b,
                    src.header.quatern_c,
                    src.header.quatern_d,
                    src.header.quatern_x
                ]
            );
            assert_eq!(v.spacing_mm, src.spacing_mm);
            assert_eq!(v.header.xyzt_units & 0x07, 2, "units are mm");
            assert!(info.compressed);
        }
        let (pre, info) = read_volume(&preproc).unwrap();
        assert_eq!(info.dtype_name(), "float32");
        assert!(
            pre.data.iter().all(|v| *v >= 0.0),
            "normalized intensities are >= 0"
        );
        let (m, info) = read_volume(&mask).unwrap();
        assert_eq!(info.dtype_name(), "uint8");
        assert!(m.data.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    // Mask quality against the references shipped in data/derivatives/truth.
    let truth = data.join("derivatives/truth");
    let itk = dice(
        &out.join("sub-itk/anat/sub-itk_desc-brain_mask.nii.gz"),
        &truth.join("sub-itk/anat/sub-itk_desc-brain_mask.nii.gz"),
    );
    assert!(itk >= 0.95, "Dice on the ITK head {itk:.4}");
    for sub in ["01", "02"] {
        let d = dice(
            &out.join(format!("sub-{sub}/anat/sub-{sub}_desc-brain_mask.nii.gz")),
            &truth.join(format!("sub-{sub}/anat/sub-{sub}_desc-brain_mask.nii.gz")),
        );
        assert!(d >= 0.97, "Dice on phantom sub-{sub} {d:.4}");
    }

    // The run report lists every input with its steps and outputs.
    let report = latest_report(&out);
    assert_eq!(report["counts"]["ok"], 3);
    for f in file_records(&report) {
        assert_eq!(f["status"], "ok");
        let steps: Vec<&str> = f["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "load_file",
                "skull_strip",
                "bias_correction",
                "normalization",
                "write_output"
            ]
        );
        assert_eq!(f["outputs"].as_array().unwrap().len(), 4);
    }

    // The official validator accepts the derivatives.
    if let Some(validator) = bids_validator() {
        let errors = validator_errors(&validator, &out);
        assert!(errors.is_empty(), "BIDS validator errors: {errors:#?}");
    }

    // Resume: a rerun skips everything and leaves the outputs untouched.
    let preproc = out.join("sub-01/anat/sub-01_desc-preproc_T1w.nii.gz");
    let before = std::fs::metadata(&preproc).unwrap().modified().unwrap();
    let (code, _, stderr) = run(&data, &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("0 ok, 0 failed, 3 skipped"), "{stderr}");
    assert_eq!(
        std::fs::metadata(&preproc).unwrap().modified().unwrap(),
        before
    );

    // Changed settings are not "done": dropping a stage redoes the work.
    let (code, _, stderr) = run(
        &data,
        &out,
        &[
            "--skip-stages",
            "normalization",
            "--participant-label",
            "sub-01",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 ok, 0 failed, 0 skipped"), "{stderr}");

    // --overwrite redoes everything.
    let (code, _, stderr) = run(&data, &out, &["--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("3 ok, 0 failed, 0 skipped"), "{stderr}");

    // No temporary file is left anywhere.
    assert_no_temp_files(&out);
}

#[test]
fn synth_dataset_with_sessions_and_plain_nii() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    synth(
        &bids,
        &[
            "--subjects",
            "3",
            "--sessions",
            "2",
            "--shape",
            "40,48,40",
            "--voxel-size",
            "3,3,3.5",
            "--size-jitter",
            "0.2",
            "--no-gzip",
            "--seed",
            "3",
        ],
    );
    let (code, stdout, stderr) = run(
        &bids,
        &out,
        &[
            "--format",
            "json",
            "--threads",
            "2",
            "--mem-gb",
            "0.005", // each file fits (≤ 3.5 MB), two large ones do not
            "--save-intermediates",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["counts"]["ok"], 6);
    assert_eq!(
        report["subjects"][0]["sessions"],
        serde_json::json!(["1", "2"])
    );
    for sub in 1..=3 {
        for ses in 1..=2 {
            let stem = format!("sub-{sub:02}/ses-{ses}/anat/sub-{sub:02}_ses-{ses}");
            let d = dice(
                &out.join(format!("{stem}_desc-brain_mask.nii.gz")),
                &bids.join(format!("derivatives/truth/{stem}_desc-brain_mask.nii.gz")),
            );
            assert!(d >= 0.95, "{stem}: Dice {d:.4}");
            let (field, _) =
                read_volume(&out.join(format!("{stem}_desc-biasfield_T1w.nii.gz"))).unwrap();
            assert!(
                field.data.iter().all(|&f| f > 0.2 && f < 5.0),
                "{stem}: field is a positive gain"
            );
        }
    }
    if let Some(validator) = bids_validator() {
        let errors = validator_errors(&validator, &out);
        assert!(errors.is_empty(), "BIDS validator errors: {errors:#?}");
    }
}
