//! The whole `neuro-batch run` (release binary) on a synth dataset with 1 thread and with all
//! threads; throughput is subjects per second. Dataset size comes from the environment:
//! `NEURO_BATCH_BENCH_SUBJECTS` (default 8) and `NEURO_BATCH_BENCH_SHAPE` (default 96,112,96).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_neuro-batch");

fn scheduler(c: &mut Criterion) {
    let subjects = std::env::var("NEURO_BATCH_BENCH_SUBJECTS").unwrap_or_else(|_| "8".into());
    let shape = std::env::var("NEURO_BATCH_BENCH_SHAPE").unwrap_or_else(|_| "96,112,96".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let bids = dir.path().join("bids");
    let out = dir.path().join("out");
    let status = Command::new(BIN)
        .args([
            "synth",
            bids.to_str().expect("utf-8 path"),
            "--subjects",
            &subjects,
            "--shape",
            &shape,
        ])
        .args(["--voxel-size", "1,1,1", "--size-jitter", "0.2"])
        .status()
        .expect("run synth");
    assert!(status.success(), "synth failed");

    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group(format!("run_{subjects}_subjects_{shape}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(
            subjects.parse().expect("subject count"),
        ));
    let mut counts = vec![1];
    if all > 1 {
        counts.push(all);
    }
    for threads in counts {
        group.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter(|| {
                let status = Command::new(BIN)
                    .arg("run")
                    .arg(&bids)
                    .arg(&out)
                    .args([
                        "participant",
                        "--overwrite",
                        "--threads",
                        &threads.to_string(),
                    ])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("run neuro-batch");
                assert!(status.success());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
