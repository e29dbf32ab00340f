//! `analyze --traces` on a large trace file, measured (never asserted): a file of neuro-batch
//! shaped subject traces (8 spans, the attributes a real run writes, one line per export batch
//! of 512 spans) of `--mb` MB (default 200), analysed as the CLI does (the table built as the
//! file is read) and, for comparison, every span decoded first and the table built after;
//! seconds and peak RSS of each.
//!
//! `cargo bench -p neuro-batch-analysis --bench store_scale [-- --mb N]`
//!
//! Each analysis runs in a child process (this program again, with `--analyze FILE`), so its
//! peak RSS is its own.

#[path = "support/child.rs"]
mod child;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use child::{peak_rss_mb, run_self};
use neuro_batch_analysis::rank::RankOptions;
use neuro_batch_analysis::{ReportOptions, SourceInfo, SpanTable, report, store};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Writes subject traces to `path` until it holds `mb` MB; the number of spans.
fn write_store(path: &Path, mb: usize) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let kv = |k: &str, v: Value| json!({"key": k, "value": v});
    let (mut written, mut spans, mut batch) = (0usize, 0usize, Vec::new());
    for t in 0.. {
        if written >= mb << 20 {
            break;
        }
        let trace = format!("{:032x}", t as u128 * 104_729 + 1);
        let size_mb: f64 = rng.random_range(5.0..30.0);
        let highres = t % 4 >= 2;
        let common = vec![
            kv("thread.id", json!({"intValue": (t % 16).to_string()})),
            kv("thread.name", json!({"stringValue": "rayon-worker"})),
            kv("bids.subject", json!({"stringValue": format!("{t:05}")})),
            kv("file.size_mb", json!({"doubleValue": size_mb})),
            kv("file.size_bucket", json!({"stringValue": "16-32MB"})),
            kv(
                "file.size_bytes",
                json!({"intValue": ((size_mb * 1e6) as i64).to_string()}),
            ),
            kv(
                "scanner.manufacturer",
                json!({"stringValue": (["Siemens", "GE"][t % 2])}),
            ),
            kv(
                "scanner.model",
                json!({"stringValue": (["Prisma", "SIGNA Artist"][t % 2])}),
            ),
            kv(
                "scanner.field_strength_t",
                json!({"doubleValue": ([3.0, 1.5][t % 2])}),
            ),
            kv(
                "image.matrix",
                json!({"stringValue": if highres { "240x300x300" } else { "176x240x256" }}),
            ),
            kv(
                "image.voxel_mm",
                json!({"stringValue": if highres { "0.8x0.8x0.8" } else { "1x1x1" }}),
            ),
        ];
        let base = 1_795_000_000_000_000_000i64 + t as i64 * 1_000_000_000;
        let span = |name: &str, id: u64, parent: u64, start: i64, ms: f64, own: Vec<Value>| {
            let mut attributes = common.clone();
            attributes.extend(own);
            attributes.push(kv("step.cpu_ms", json!({"doubleValue": ms * 0.93})));
            json!({
                "traceId": trace, "spanId": format!("{:016x}", (t as u64) << 8 | id),
                "parentSpanId": if parent == 0 { String::new() } else {
                    format!("{:016x}", (t as u64) << 8 | parent)
                },
                "name": name, "kind": 1,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + (ms * 1e6) as i64).to_string(),
                "attributes": attributes, "status": {"code": 1, "message": ""}
            })
        };
        let noise = |rng: &mut rand::rngs::StdRng| rng.random_range(0.8..1.25);
        let scale = if highres { 2.0 } else { 1.0 };
        let [load, skull, bias, norm, write] =
            [2.0, 40.0, 25.0, 1.0, 6.0].map(|k| k * size_mb * scale * noise(&mut rng));
        let ms = |v: f64| (v * 1e6) as i64;
        let int = |v: f64| json!({"intValue": (v as i64).to_string()});
        let float = |v: f64| json!({"doubleValue": v});
        let image = skull + bias + norm;
        let total = load + image + write;
        // In the order spans end, as an exporter writes them.
        let trace_spans = [
            span(
                "load_file",
                3,
                2,
                base,
                load,
                vec![
                    kv("array.shape", json!({"stringValue": "176x240x256"})),
                    kv("array.dtype", json!({"stringValue": "int16"})),
                    kv("array.voxels", int(10_813_440.0)),
                    kv("io.bytes_read", int(size_mb * 1e6)),
                ],
            ),
            span(
                "skull_strip",
                5,
                4,
                base + ms(load),
                skull,
                vec![
                    kv(
                        "skull_strip.threshold",
                        float(rng.random_range(300.0..600.0)),
                    ),
                    kv(
                        "skull_strip.brain_voxels",
                        int(rng.random_range(1e6..1.6e6)),
                    ),
                ],
            ),
            span(
                "bias_correction",
                6,
                4,
                base + ms(load + skull),
                bias,
                vec![
                    kv(
                        "bias_correction.iterations",
                        int(rng.random_range(20.0..60.0)),
                    ),
                    kv("bias_correction.control_points", int(1331.0)),
                ],
            ),
            span(
                "normalization",
                7,
                4,
                base + ms(load + skull + bias),
                norm,
                vec![kv(
                    "normalization.wm_peak",
                    float(rng.random_range(900.0..1100.0)),
                )],
            ),
            span("process_image", 4, 2, base + ms(load), image, Vec::new()),
            span(
                "write_output",
                8,
                2,
                base + ms(load + image),
                write,
                vec![kv("io.bytes_written", int(size_mb * 0.9e6))],
            ),
            span("process_file", 2, 1, base, total, Vec::new()),
            span("process_subject", 1, 0, base, total, Vec::new()),
        ];
        spans += trace_spans.len();
        batch.extend(trace_spans);
        if batch.len() >= 512 {
            written += write_line(&mut file, std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        write_line(&mut file, batch);
    }
    file.flush().unwrap();
    spans
}

/// One export batch as an OTLP JSON line; its length.
fn write_line(file: &mut impl Write, spans: Vec<Value>) -> usize {
    let line = json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "neuro-batch"}},
        ]},
        "scopeSpans": [{"scope": {"name": "neuro-batch"}, "spans": spans}]
    }]});
    let text = serde_json::to_string(&line).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.write_all(b"\n").unwrap();
    text.len() + 1
}

/// Analyses `file` in this process: the table built as the file is read, or (`at_once`) from
/// every span decoded first; prints seconds, rows and peak RSS.
fn analyze(file: &Path, at_once: bool) {
    let started = Instant::now();
    let files = [file.to_path_buf()];
    let table = if at_once {
        SpanTable::build(store::read_spans(&files).unwrap().0).unwrap()
    } else {
        store::read_table(&files).unwrap().0
    };
    let options = ReportOptions {
        rank: RankOptions::default(),
        label_attribute: "bids.subject".into(),
        grafana: None,
        slowest: 10,
    };
    let report = report::build(&table, SourceInfo::default(), &options).unwrap();
    std::hint::black_box(&report);
    println!(
        "{:.2} s for {} spans, peak RSS {:.0} MB",
        started.elapsed().as_secs_f64(),
        table.len(),
        peak_rss_mb()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    if let Some(file) = value("--analyze") {
        analyze(Path::new(&file), args.iter().any(|a| a == "--at-once"));
        return;
    }
    let mb: usize = value("--mb").and_then(|v| v.parse().ok()).unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces-scale.jsonl");
    let spans = write_store(&path, mb);
    let size = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    println!("trace file: {size:.0} MB, {spans} spans");
    let file = path.to_str().unwrap();
    for (label, args) in [
        ("streamed (the CLI)", vec!["--analyze", file]),
        ("decoded first", vec!["--analyze", file, "--at-once"]),
    ] {
        println!("{label:20} {}", run_self(&args));
    }
}
