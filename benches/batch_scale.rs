//! How a whole `neuro-batch run` (release binary) scales, printed, never asserted:
//! - N tiny subjects (24×28×24 at 8 mm) for N = 1 000 and 10 000: seconds, subjects/s and peak
//!   RSS, so memory can be seen to follow the work in flight, not the batch;
//! - the ITK head of `data/` repeated 8 times, with 1 and with 2 threads: seconds and heads/s.
//!
//! `cargo bench --bench batch_scale [-- --tiny 1000,10000] [--heads 8]`
//! (10 000 tiny subjects take about 3 minutes on 2 cores, most of it writing the dataset.)

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_neuro-batch");

/// Runs `command` to the end; seconds and its peak RSS in MB (from `wait4`'s rusage).
#[allow(
    clippy::zombie_processes,
    reason = "reaped by wait4, which also gives the rusage"
)]
fn measured(command: &mut Command) -> (f64, f64) {
    let started = Instant::now();
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start neuro-batch");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our child, not yet waited for (`child` is not used after this).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let seconds = started.elapsed().as_secs_f64();
    (seconds, usage.ru_maxrss as f64 / 1024.0)
}

fn synth(dir: &Path, subjects: usize, shape: &str, voxel: &str) {
    let status = Command::new(BIN)
        .arg("synth")
        .arg(dir)
        .args(["--subjects", &subjects.to_string(), "--shape", shape])
        .args(["--voxel-size", voxel])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run synth");
    assert!(status.success(), "synth failed");
}

fn list(args: &[String], flag: &str, default: &str) -> Vec<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map_or(default, String::as_str)
        .split(',')
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    let tmp = tempfile::tempdir().expect("temp dir");

    println!("tiny subjects (24×28×24, 8 mm), all threads:");
    for n in list(&args, "--tiny", "1000,10000") {
        let bids = tmp.path().join(format!("tiny{n}"));
        synth(&bids, n, "24,28,24", "8,8,8");
        let out = tmp.path().join(format!("tiny{n}-out"));
        let (s, rss) = measured(
            Command::new(BIN)
                .arg("run")
                .arg(&bids)
                .arg(&out)
                .arg("participant"),
        );
        println!(
            "  {n:>6} subjects: {s:7.1} s, {:6.0} subjects/s, peak RSS {rss:6.0} MB",
            n as f64 / s
        );
        let (s, rss) = measured(
            Command::new(BIN)
                .arg("run")
                .arg(&bids)
                .arg(tmp.path().join(format!("tiny{n}-dry")))
                .args(["participant", "--dry-run"]),
        );
        println!("  {n:>6} subjects, --dry-run: {s:5.2} s, peak RSS {rss:6.0} MB");
        let _ = std::fs::remove_dir_all(&bids);
        let _ = std::fs::remove_dir_all(&out);
    }

    let heads = list(&args, "--heads", "8").first().copied().unwrap_or(8);
    let head = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sub-itk/anat/sub-itk_T1w.nii.gz");
    let bids = tmp.path().join("heads");
    std::fs::create_dir_all(&bids).unwrap();
    std::fs::write(
        bids.join("dataset_description.json"),
        r#"{"Name": "ITK head, repeated", "BIDSVersion": "1.9.0"}"#,
    )
    .unwrap();
    for i in 1..=heads {
        let anat = bids.join(format!("sub-{i:02}/anat"));
        std::fs::create_dir_all(&anat).unwrap();
        std::fs::copy(&head, anat.join(format!("sub-{i:02}_T1w.nii.gz"))).unwrap();
    }
    println!("the ITK head of data/, {heads} copies:");
    let mut one = f64::NAN;
    for threads in [1, 2] {
        let out = tmp.path().join(format!("heads-{threads}"));
        let (s, rss) = measured(Command::new(BIN).arg("run").arg(&bids).arg(&out).args([
            "participant",
            "--threads",
            &threads.to_string(),
        ]));
        if threads == 1 {
            one = s;
        }
        println!(
            "  {threads} thread(s): {s:6.2} s, {:5.2} heads/s, peak RSS {rss:5.0} MB, speed-up {:.2}×",
            heads as f64 / s,
            one / s
        );
    }
}
