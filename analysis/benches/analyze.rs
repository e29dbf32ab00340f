//! What `analyze` costs: 100 000 spans from the local store (read, table, report), and the
//! Tempo path's cost per trace against the captured responses replayed on 127.0.0.1.
//!
//! `cargo bench -p neuro-batch-analysis --bench analyze`

#[path = "../tests/common/replay.rs"]
mod replay;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use neuro_batch_analysis::rank::RankOptions;
use neuro_batch_analysis::tempo::{self, Retry, TempoClient};
use neuro_batch_analysis::{ReportOptions, SourceInfo, SpanTable, report, store};
use rand::{Rng, SeedableRng};
use serde_json::json;

const TRACES: usize = 12_500;
const SPANS_PER_TRACE: usize = 8;

/// A store file shaped like neuro-batch's: one subject per trace, 8 spans, durations that grow
/// with the file size, one export batch (line) per 100 traces.
fn write_store(path: &Path) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let kv = |k: &str, v: serde_json::Value| json!({"key": k, "value": v});
    let mut spans = Vec::new();
    for t in 0..TRACES {
        let trace = format!("{:032x}", t as u128 * 7919 + 1);
        let size_mb: f64 = rng.random_range(1.0..64.0);
        let base = 1_795_000_000_000_000_000i64 + t as i64 * 1_000_000_000;
        let shared = vec![
            kv("bids.subject", json!({"stringValue": format!("{t:05}")})),
            kv("file.size_mb", json!({"doubleValue": size_mb})),
            kv(
                "file.format",
                json!({"stringValue": if t % 3 == 0 { "nifti" } else { "nifti-gz" }}),
            ),
        ];
        let stage = |name: &str, id: u64, parent: u64, start: i64, ms: f64| {
            json!({
                "traceId": trace, "spanId": format!("{id:016x}"),
                "parentSpanId": if parent == 0 { String::new() } else { format!("{parent:016x}") },
                "name": name, "kind": 1,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + (ms * 1e6) as i64).to_string(),
                "attributes": shared, "status": {"code": 1, "message": ""}
            })
        };
        let id = |k: u64| (t as u64) << 8 | k;
        let noise = |rng: &mut rand::rngs::StdRng| rng.random_range(0.8..1.25);
        let (load, skull, bias, norm, write) = (
            2.0 * size_mb * noise(&mut rng),
            12.0 * size_mb * noise(&mut rng),
            4.0 * size_mb * noise(&mut rng),
            0.3 * size_mb * noise(&mut rng),
            1.5 * size_mb * noise(&mut rng),
        );
        let image = skull + bias + norm;
        let total = load + image + write;
        let ms = |v: f64| (v * 1e6) as i64;
        spans.extend([
            stage("process_subject", id(1), 0, base, total),
            stage("process_file", id(2), id(1), base, total),
            stage("load_file", id(3), id(2), base, load),
            stage("process_image", id(4), id(2), base + ms(load), image),
            stage("skull_strip", id(5), id(4), base + ms(load), skull),
            stage(
                "bias_correction",
                id(6),
                id(4),
                base + ms(load + skull),
                bias,
            ),
            stage(
                "normalization",
                id(7),
                id(4),
                base + ms(load + skull + bias),
                norm,
            ),
            stage("write_output", id(8), id(2), base + ms(load + image), write),
        ]);
        if (t + 1) % 100 == 0 {
            let line = json!({"resourceSpans": [{
                "resource": {"attributes": [kv("service.name", json!({"stringValue": "neuro-batch"}))]},
                "scopeSpans": [{"scope": {"name": "neuro-batch"}, "spans": spans}]
            }]});
            serde_json::to_writer(&mut file, &line).unwrap();
            file.write_all(b"\n").unwrap();
            spans = Vec::new();
        }
    }
    file.flush().unwrap();
}

fn options() -> ReportOptions {
    ReportOptions {
        rank: RankOptions::default(),
        label_attribute: "bids.subject".into(),
        grafana: None,
        slowest: 10,
    }
}

fn store_100k(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces-bench.jsonl");
    write_store(&path);
    let files = vec![path];
    let mut g = c.benchmark_group("store_100k_spans");
    g.sample_size(10)
        .throughput(Throughput::Elements((TRACES * SPANS_PER_TRACE) as u64));
    g.bench_function("read", |b| b.iter(|| store::read_spans(&files).unwrap()));
    g.bench_function("read_table", |b| {
        b.iter(|| store::read_table(&files).unwrap())
    });
    let spans = store::read_spans(&files).unwrap().0;
    g.bench_function("table", |b| {
        b.iter(|| SpanTable::build(spans.clone()).unwrap())
    });
    let table = SpanTable::build(spans).unwrap();
    g.bench_function("report", |b| {
        b.iter(|| report::build(&table, SourceInfo::default(), &options()).unwrap())
    });
    g.bench_function("read+table+report", |b| {
        b.iter(|| {
            let (table, _) = store::read_table(&files).unwrap();
            report::build(&table, SourceInfo::default(), &options()).unwrap()
        })
    });
    g.finish();
}

fn tempo_per_trace(c: &mut Criterion) {
    // Our side of a trace fetch: decoding the captured v2 body (22 spans, 9.8 KB).
    let body = replay::body("trace_v2_json.json");
    c.bench_function("decode_tempo_trace_v2", |b| {
        b.iter(|| neuro_batch_analysis::otlp_json::decode(&body).unwrap())
    });
    // Whole fetches over loopback. Every id answers with the captured sub-01 trace. The replay
    // server (tiny_http) does not set TCP_NODELAY, so each sequential request can stall on a
    // delayed ACK; Tempo (Go net/http) sets it.
    let tempo = replay::Replay::start(|_| replay::captured("trace_v2_json.json"));
    let client = TempoClient::new(
        &tempo.url,
        Duration::from_secs(10),
        Duration::from_secs(600),
        Retry::default(),
    )
    .unwrap();
    let ids: Vec<String> = (0..200u32).map(|i| format!("{i:032x}")).collect();
    let mut g = c.benchmark_group("tempo_fetch_200_traces");
    g.sample_size(10)
        .throughput(Throughput::Elements(ids.len() as u64));
    for concurrency in [1, 4] {
        g.bench_function(format!("concurrency_{concurrency}"), |b| {
            b.iter(|| tempo::fetch_traces(&client, &ids, concurrency, &|| {}))
        });
    }
    g.finish();
}

criterion_group!(benches, store_100k, tempo_per_trace);
criterion_main!(benches);
