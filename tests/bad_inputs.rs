//! Bad input: each broken file fails alone with a clear error naming it, the other subjects
//! finish, the exit code is 1, and nothing partial is left behind. Plus the fatal exit codes.

mod common;

use common::*;

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

#[test]
fn each_bad_file_fails_alone_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    synth(
        &bids,
        &[
            "--subjects",
            "2",
            "--shape",
            "40,48,40",
            "--voxel-size",
            "3,3,3",
        ],
    );

    // (subject, file name, bytes, words the error must contain)
    let huge = RawNifti::new(&[256, 256, 256], 64, 64).bytes(&[]); // 352 bytes claiming 128 MiB
    let mut truncated_gz = gzip(
        &RawNifti::new(&[32, 32, 32], 16, 32)
            .bytes(&f32_bytes((0..32768).map(|i| (i % 97) as f32))),
    );
    truncated_gz.truncate(truncated_gz.len() / 2);
    let cases: Vec<(&str, &str, Vec<u8>, &[&str])> = vec![
        ("empty", "sub-empty_T1w.nii.gz", vec![], &["empty"]),
        (
            "html",
            "sub-html_T1w.nii.gz",
            b"<!DOCTYPE html><html>Not Found</html>".to_vec(),
            &["not gzip", "HTML"],
        ),
        ("bom", "sub-bom_T1w.nii.gz", vec![0xFF, 0xFE], &["not gzip"]),
        (
            "bomnii",
            "sub-bomnii_T1w.nii",
            vec![0xFF, 0xFE],
            &["too short"],
        ),
        (
            "huge",
            "sub-huge_T1w.nii",
            huge,
            &["truncated", "134217728"],
        ),
        (
            "truncgz",
            "sub-truncgz_T1w.nii.gz",
            truncated_gz,
            &["truncated"],
        ),
        (
            "nan",
            "sub-nan_T1w.nii",
            RawNifti::new(&[8, 8, 8], 16, 32).bytes(&f32_bytes([f32::NAN; 512])),
            &["NaN"],
        ),
        (
            "zero",
            "sub-zero_T1w.nii",
            RawNifti::new(&[8, 8, 8], 16, 32).bytes(&f32_bytes([0.0; 512])),
            &["same value"],
        ),
        (
            "fourd",
            "sub-fourd_T1w.nii",
            RawNifti::new(&[8, 8, 8, 5], 16, 32).bytes(&f32_bytes([1.0; 2560])),
            &["5 volumes"],
        ),
        (
            "complex",
            "sub-complex_T1w.nii",
            RawNifti::new(&[4, 4, 4], 32, 64).bytes(&[0u8; 512]),
            &["unsupported", "complex64"],
        ),
        (
            "nifti2",
            "sub-nifti2_T1w.nii",
            {
                let mut r = RawNifti::new(&[4, 4, 4], 16, 32);
                r.sizeof_hdr = 540;
                r.bytes(&[0u8; 256])
            },
            &["NIfTI-2"],
        ),
        (
            "negdim",
            "sub-negdim_T1w.nii",
            RawNifti::new(&[8, -8, 8], 16, 32).bytes(&[]),
            &["dim[2] = -8"],
        ),
    ];
    for (subject, name, bytes, _) in &cases {
        put(&bids, subject, name, bytes);
    }
    // Unreadable: a directory where a file should be (works as root too) and, when not root,
    // a file without read permission.
    std::fs::create_dir_all(bids.join("sub-dir/anat/sub-dir_T1w.nii.gz")).unwrap();
    let phantom = std::fs::read(bids.join("sub-01/anat/sub-01_T1w.nii.gz")).unwrap();
    put(&bids, "noperm", "sub-noperm_T1w.nii.gz", &phantom);
    let noperm = bids.join("sub-noperm/anat/sub-noperm_T1w.nii.gz");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&noperm, std::fs::Permissions::from_mode(0o000)).unwrap();
    let root = std::fs::read(&noperm).is_ok();

    let (code, _, stderr) = run(&bids, &out, &["--threads", "2"]);
    assert_eq!(code, 1, "exit code says some failed: {stderr}");
    let report = latest_report(&out);
    let records = file_records(&report);
    let status = |subject: &str| -> serde_json::Value {
        records
            .iter()
            .find(|r| r["subject"] == subject)
            .unwrap_or_else(|| panic!("no record for {subject}"))
            .clone()
    };
    for good in ["01", "02"] {
        assert_eq!(status(good)["status"], "ok", "good subject {good} finished");
    }
    for (subject, name, _, words) in &cases {
        let r = status(subject);
        assert_eq!(r["status"], "failed", "{subject}");
        let error = r["error"].as_str().unwrap();
        assert!(error.contains(name), "error names the file: {error}");
        for w in *words {
            assert!(
                error.contains(w),
                "{subject}: error '{error}' should mention '{w}'"
            );
        }
        assert!(
            stderr.contains(error),
            "summary lists the failure of {subject}"
        );
        assert!(
            !out.join(format!("sub-{subject}")).join("anat").exists()
                || files_under(&out.join(format!("sub-{subject}"))).is_empty(),
            "no output for {subject}"
        );
    }
    let dir_error = status("dir")["error"].as_str().unwrap().to_string();
    assert!(
        dir_error.contains("sub-dir_T1w.nii.gz") && dir_error.contains("cannot read"),
        "{dir_error}"
    );
    if root {
        assert_eq!(
            status("noperm")["status"],
            "ok",
            "root reads files without permission bits"
        );
    } else {
        let e = status("noperm")["error"].as_str().unwrap().to_string();
        assert!(
            e.contains("sub-noperm_T1w.nii.gz") && e.contains("ermission"),
            "{e}"
        );
    }
    assert_no_temp_files(&out);
}

#[test]
fn fatal_conditions_have_distinct_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    synth(
        &bids,
        &[
            "--subjects",
            "1",
            "--shape",
            "24,24,24",
            "--voxel-size",
            "4,4,4",
        ],
    );

    // 66: missing dataset, no dataset_description.json.
    let (code, _, stderr) = run(&tmp.path().join("nope"), &tmp.path().join("o"), &[]);
    assert_eq!(code, 66, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(plain.join("sub-01/anat")).unwrap();
    let (code, _, stderr) = run(&plain, &tmp.path().join("o"), &[]);
    assert_eq!(code, 66, "{stderr}");
    assert!(stderr.contains("dataset_description.json"), "{stderr}");

    // 18: filters select nothing.
    let (code, _, stderr) = run(&bids, &tmp.path().join("o"), &["--participant-label", "99"]);
    assert_eq!(code, 18, "{stderr}");
    let (code, _, _) = run(&bids, &tmp.path().join("o"), &["--suffix", "T2w"]);
    assert_eq!(code, 18);

    // 73: output cannot be created (below a regular file), before any work.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let (code, _, stderr) = run(&bids, &blocker.join("out"), &[]);
    assert_eq!(code, 73, "{stderr}");
    assert!(
        stderr.contains("cannot create the output directory"),
        "{stderr}"
    );

    // 17: group level; 64: usage errors.
    let output = neuro_batch()
        .arg("run")
        .arg(&bids)
        .arg(tmp.path().join("o"))
        .arg("group")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(17));
    let output = neuro_batch().arg("run").arg(&bids).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let output = neuro_batch()
        .args(["run", "a", "b", "participant", "--stages", "blur"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let output = neuro_batch().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(
        &neuro_batch()
            .args(["run", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for code in ["66", "73", "18", "130"] {
        assert!(help.contains(code), "--help documents exit code {code}");
    }
}

/// A valid volume too big for the memory the process may use fails alone, as out of memory
/// (not as a bad header), and the other subject finishes. The limit is the shell's
/// `ulimit -v` on address space; the big file is sparse, so it costs no disk.
#[test]
fn a_volume_bigger_than_the_memory_left_fails_alone_as_out_of_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    synth(&bids, &["--subjects", "1", "--shape", "40,48,40"]);
    let big = bids.join("sub-big/anat/sub-big_T1w.nii");
    std::fs::create_dir_all(big.parent().unwrap()).unwrap();
    // 1000 × 1000 × 250 float32: 1 GB of voxels, more than the 700 MB the run may map.
    let header = RawNifti::new(&[1000, 1000, 250], 16, 32).bytes(&[]);
    let file = std::fs::File::create(&big).unwrap();
    std::io::Write::write_all(&mut &file, &header).unwrap();
    file.set_len(header.len() as u64 + 1_000_000_000).unwrap();

    let output = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 700000 && exec \"$0\" \"$@\""])
        .arg(assert_cmd::cargo::cargo_bin("neuro-batch"))
        .arg("run")
        .arg(&bids)
        .arg(&out)
        .args(["participant", "--threads", "1"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sub-big_T1w.nii: not enough memory: cannot allocate 1000000000 bytes"),
        "{stderr}"
    );
    let report = latest_report(&out);
    let failed: Vec<&serde_json::Value> = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["files"].as_array().unwrap())
        .filter(|f| f["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(report["counts"]["ok"], 1, "{report}");
    assert!(
        !out.join("sub-big").exists(),
        "no output of the failed file"
    );
}
