//! What tracing costs: the whole `neuro-batch run` on a synth dataset untraced
//! (`OTEL_SDK_DISABLED=true`), traced to the embedded JSON-lines file, and traced over
//! OTLP/HTTP to a receiver on 127.0.0.1. Dataset size: `NEURO_BATCH_BENCH_SUBJECTS`
//! (default 16) and `NEURO_BATCH_BENCH_SHAPE` (default 96,112,96).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_neuro-batch");

/// One way of running: its name, extra environment and extra arguments.
struct Config<'a> {
    name: &'static str,
    env: Vec<(&'static str, &'static str)>,
    args: Vec<&'a str>,
}

fn tracing_overhead(c: &mut Criterion) {
    let subjects = std::env::var("NEURO_BATCH_BENCH_SUBJECTS").unwrap_or_else(|_| "16".into());
    let shape = std::env::var("NEURO_BATCH_BENCH_SHAPE").unwrap_or_else(|_| "96,112,96".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let bids = dir.path().join("bids");
    let status = Command::new(BIN)
        .args([
            "synth",
            bids.to_str().expect("utf-8 path"),
            "--subjects",
            &subjects,
            "--shape",
            &shape,
        ])
        .args(["--voxel-size", "1,1,1"])
        .status()
        .expect("run synth");
    assert!(status.success(), "synth failed");

    // A receiver that accepts every OTLP request.
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let url = format!(
        "http://{}",
        server.server_addr().to_ip().expect("ip address")
    );
    let accept = std::sync::Arc::clone(&server);
    std::thread::spawn(move || {
        for mut request in accept.incoming_requests() {
            let _ = std::io::copy(request.as_reader(), &mut std::io::sink());
            let _ = request.respond(tiny_http::Response::empty(200));
        }
    });

    let mut group = c.benchmark_group(format!("trace_{subjects}_subjects_{shape}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(
            subjects.parse().expect("subject count"),
        ));
    let configs = [
        Config {
            name: "untraced",
            env: vec![("OTEL_SDK_DISABLED", "true")],
            args: vec![],
        },
        Config {
            name: "trace_file",
            env: vec![],
            args: vec![],
        },
        Config {
            name: "otlp_http",
            env: vec![],
            args: vec!["--otlp-endpoint", &url],
        },
    ];
    for Config { name, env, args } in &configs {
        let out = dir.path().join(name);
        group.bench_function(*name, |b| {
            b.iter(|| {
                let status = Command::new(BIN)
                    .arg("run")
                    .arg(&bids)
                    .arg(&out)
                    .args(["participant", "--overwrite"])
                    .args(args)
                    .envs(env.iter().copied())
                    .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .stderr(Stdio::null())
                    .status()
                    .expect("run neuro-batch");
                assert!(status.success());
            })
        });
    }
    group.finish();
    server.unblock();
}

criterion_group!(benches, tracing_overhead);
criterion_main!(benches);
