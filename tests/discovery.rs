//! Discovery through `--dry-run --format json`: what is found, what is skipped, and that
//! nothing is written.

mod common;

use common::*;
use std::path::Path;

fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b"not read by a dry run").unwrap();
}

fn plan(bids: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run(
        bids,
        out,
        &[&["--dry-run", "--format", "json"], args].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn relatives(plan: &serde_json::Value) -> Vec<String> {
    plan["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["relative"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn finds_inputs_in_spec_layout_and_skips_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    bids_root(&bids);
    for rel in [
        "sub-02/anat/sub-02_T1w.nii.gz",
        "sub-01/ses-pre/anat/sub-01_ses-pre_run-2_acq-fast_T1w.nii",
        "sub-01/ses-pre/anat/sub-01_ses-pre_run-1_acq-fast_T1w.nii",
        "sub-01/ses-post/anat/sub-01_ses-post_T1w.nii.gz",
        "sub-01/ses-post/anat/sub-01_ses-post_T2w.nii.gz",
        "sub-03/anat/sub-03_T1w.nii.gz",
        "sub-03/anat/sub-03_desc-old_T1w.nii.gz",
        "sub-03/anat/.sub-03_T1w.nii.gz",
        "sub-03/anat/sub-03_bogus-x_T1w.nii.gz",
        "sub-03/anat/sub-04_T1w.nii.gz",
        "sub-03/func/sub-03_task-rest_bold.nii.gz",
        "derivatives/sub-01/anat/sub-01_T1w.nii.gz",
        "sourcedata/sub-01/anat/sub-01_T1w.nii.gz",
        "code/sub-01/anat/sub-01_T1w.nii.gz",
        "sub-05/anat/sub-05_T1w.nii.gz",
    ] {
        touch(&bids, rel);
    }
    std::fs::write(bids.join(".bidsignore"), "**/*_desc-old_*\nsub-05/\n").unwrap();
    std::fs::write(
        bids.join("participants.tsv"),
        "\u{feff}participant_id\tage\r\nsub-01\t30\r\nsub-02\tn/a\r\nsub-09\t40\r\nn/a\tn/a\r\n",
    )
    .unwrap();

    let p = plan(&bids, &out, &[]);
    assert_eq!(
        relatives(&p),
        [
            "sub-01/ses-post/anat/sub-01_ses-post_T1w.nii.gz",
            "sub-01/ses-pre/anat/sub-01_ses-pre_run-1_acq-fast_T1w.nii",
            "sub-01/ses-pre/anat/sub-01_ses-pre_run-2_acq-fast_T1w.nii",
            "sub-02/anat/sub-02_T1w.nii.gz",
            "sub-03/anat/sub-03_T1w.nii.gz",
        ]
    );
    let first_pre = &p["subjects"][0]["inputs"][1];
    assert_eq!(
        first_pre["entities"],
        serde_json::json!({"sub": "01", "ses": "pre", "acq": "fast", "run": "1"})
    );
    assert_eq!(first_pre["session"], "pre");
    assert_eq!(
        first_pre["outputs"][0].as_str().unwrap(),
        out.join("sub-01/ses-pre/anat/sub-01_ses-pre_acq-fast_run-1_desc-preproc_T1w.nii.gz")
            .to_str()
            .unwrap()
    );
    assert_eq!(
        p["subjects"][0]["sessions"],
        serde_json::json!(["post", "pre"])
    );
    let warnings = p["warnings"].to_string();
    assert!(
        warnings.contains("sub-09"),
        "listed subject without folder is a warning: {warnings}"
    );
    assert!(warnings.contains("bogus"), "{warnings}");
    assert!(
        warnings.contains("sub-04_T1w"),
        "name/folder mismatch is reported: {warnings}"
    );
    assert!(!out.exists(), "a dry run writes nothing");

    // Labels with or without prefixes; sessions filter; suffix selection.
    assert_eq!(
        relatives(&plan(&bids, &out, &["--participant-label", "sub-02", "03"])).len(),
        2
    );
    assert_eq!(
        relatives(&plan(
            &bids,
            &out,
            &["--participant-label", "01", "--session-label", "ses-post"]
        )),
        ["sub-01/ses-post/anat/sub-01_ses-post_T1w.nii.gz"]
    );
    assert_eq!(
        relatives(&plan(&bids, &out, &["--suffix", "T2w"])),
        ["sub-01/ses-post/anat/sub-01_ses-post_T2w.nii.gz"]
    );
}

#[test]
fn symlink_loop_is_a_clear_error_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    bids_root(&bids);
    touch(&bids, "sub-01/anat/sub-01_T1w.nii.gz");
    std::os::unix::fs::symlink(bids.join("sub-01"), bids.join("sub-01/ses-loop")).unwrap();
    let (code, _, stderr) = run(&bids, &tmp.path().join("out"), &["--dry-run"]);
    assert_eq!(code, 66, "{stderr}");
    assert!(stderr.contains("loop"), "{stderr}");
}
