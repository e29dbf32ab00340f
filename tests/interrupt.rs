//! Ctrl-C: admission stops, files in flight finish or are abandoned cleanly, the report is
//! written, and the exit code is 130.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigint_stops_cleanly_with_a_report_and_exit_130() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    let subjects = 30;
    synth(
        &bids,
        &[
            "--subjects",
            &subjects.to_string(),
            "--shape",
            "80,96,80",
            "--voxel-size",
            "2,2,2",
        ],
    );

    let child = Command::new(env!("CARGO_BIN_EXE_neuro-batch"))
        .arg("run")
        .arg(&bids)
        .arg(&out)
        .args(["participant", "--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = out.join("sub-01/anat/sub-01_desc-preproc_T1w.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !first.exists() {
        assert!(
            Instant::now() < deadline,
            "the first subject never finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let report = latest_report(&out);
    assert_eq!(report["interrupted"], true);
    let counts = &report["counts"];
    let (ok, cancelled) = (
        counts["ok"].as_u64().unwrap(),
        counts["cancelled"].as_u64().unwrap(),
    );
    assert!(ok >= 1, "the finished subject is kept");
    assert!(cancelled >= 1, "later subjects were not started: {counts}");
    assert_eq!(ok + cancelled, subjects, "{counts}");
    assert_eq!(counts["failed"], 0);
    for f in file_records(&report) {
        let subject = f["subject"].as_str().unwrap();
        let sidecar = out.join(format!(
            "sub-{subject}/anat/sub-{subject}_desc-preproc_T1w.json"
        ));
        let preproc = out.join(format!(
            "sub-{subject}/anat/sub-{subject}_desc-preproc_T1w.nii.gz"
        ));
        match f["status"].as_str().unwrap() {
            "ok" => assert!(sidecar.is_file() && preproc.is_file()),
            "cancelled" => assert!(
                !sidecar.exists() && !preproc.exists(),
                "cancelled sub-{subject} left outputs"
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_no_temp_files(&out);

    // A rerun resumes: only what was cancelled is processed.
    let (code, _, stderr) = run(&bids, &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("{cancelled} ok, 0 failed, {ok} skipped")),
        "{stderr}"
    );
}
