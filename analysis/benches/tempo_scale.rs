//! `analyze --tempo` at study scale, measured (never asserted): N synthetic subject traces
//! (default 10 000, 8 spans each) served on 127.0.0.1 in Tempo's shapes, loaded search-first
//! (protobuf) and turned into the report; seconds and peak RSS of that, requests made, and the
//! decode cost of the search body per 100 000 spans (protobuf and JSON). `--fetch-path` also
//! times the older path (root search, then every trace fetched) for comparison.
//!
//! `cargo bench -p neuro-batch-analysis --bench tempo_scale [-- --subjects N] [--fetch-path]`
//!
//! The fake Tempo runs in this process; the analysis runs in a child process (this program
//! again, with `--analyze URL`), so its peak RSS is the analysis' own.

#[path = "support/child.rs"]
mod child;
#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use child::{peak_rss_mb, run_self};
use common::NoProgress;
use common::fake_tempo::{self, Mode, Shape, search};
use common::replay::{Replay, Seen};
use neuro_batch_analysis::rank::RankOptions;
use neuro_batch_analysis::source::{self, Source, TempoServer};
use neuro_batch_analysis::{ReportOptions, SpanTable, report, tempo};

/// Runs the analysis against `url` in a child process; its printed line.
fn analyze_in_child(url: &str, subjects: usize) -> String {
    run_self(&["--analyze", url, "--subjects", &subjects.to_string()])
}

/// Load from `url` and build the report; seconds and what the source said.
fn analyze(url: &str, shape: Shape) -> (f64, usize, Vec<String>) {
    let server = TempoServer {
        url: url.to_owned(),
        timeout: Duration::from_secs(60),
        deadline: Duration::from_secs(3600),
    };
    let started = Instant::now();
    let loaded = source::load(&Source::Tempo(server, search(shape)), &NoProgress).unwrap();
    let spans = loaded.spans.len();
    let table = SpanTable::build(loaded.spans).unwrap();
    let options = ReportOptions {
        rank: RankOptions::default(),
        label_attribute: "bids.subject".into(),
        grafana: None,
        slowest: 10,
    };
    let report = report::build(&table, loaded.info, &options).unwrap();
    std::hint::black_box(&report);
    (
        started.elapsed().as_secs_f64(),
        spans,
        report.source.notes.clone(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let subjects = args
        .iter()
        .position(|a| a == "--subjects")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(10_000);
    let shape = Shape {
        subjects,
        fail_every: 500,
        many_files_every: 0,
        many_files: 0,
        start_s: 1_796_190_850,
    };
    if let Some(i) = args.iter().position(|a| a == "--analyze") {
        let (seconds, loaded, notes) = analyze(&args[i + 1], shape);
        println!(
            "{seconds:.2} s for {loaded} spans, peak RSS {:.0} MB",
            peak_rss_mb()
        );
        for note in notes.iter().filter(|n| n.starts_with("search-first")) {
            println!("  {note}");
        }
        return;
    }
    let traces = Arc::new(fake_tempo::subjects(shape));
    let spans: usize = traces.iter().map(Vec::len).sum();
    println!("{subjects} subject traces, {spans} spans, served on 127.0.0.1");

    // Decode cost per 100 000 spans, from one body holding every trace.
    let all = |accept: Option<&str>| {
        let seen = Seen {
            path: "/api/search".into(),
            query: [
                (
                    "q",
                    tempo::select_query(
                        "{}",
                        &[
                            "bids.subject".into(),
                            "file.size_mb".into(),
                            "array.voxels".into(),
                            "file.size_bucket".into(),
                        ],
                    ),
                ),
                ("start", "0".into()),
                ("end", i64::MAX.to_string()),
                ("limit", usize::MAX.to_string()),
                ("spss", "100".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            accept: accept.map(str::to_owned),
        };
        fake_tempo::route(traces.clone(), Mode::Current)(&seen).body
    };
    for (name, body, decode) in [
        (
            "protobuf",
            all(Some("application/protobuf")),
            tempo::decode_protobuf as fn(&[u8], &str) -> Result<_, _>,
        ),
        ("JSON", all(None), tempo::decode_json),
    ] {
        let rounds = 5;
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(decode(&body, "neuro-batch").unwrap());
        }
        let per = started.elapsed().as_secs_f64() / rounds as f64 * 100_000.0 / spans as f64;
        println!(
            "decode {name:8} {:6.1} MB body: {:.3} s per 100 000 spans",
            body.len() as f64 / 1e6,
            per
        );
    }

    let tempo = Replay::start({
        let traces = traces.clone();
        move |seen| fake_tempo::route(traces.clone(), Mode::Current)(seen)
    });
    let line = analyze_in_child(&tempo.url, subjects);
    println!(
        "search-first: {line}\n  {} searches, {} fetches",
        tempo.count("/api/search"),
        tempo.count("/api/v2/traces/"),
    );

    if args.iter().any(|a| a == "--fetch-path") {
        let old = Replay::start({
            let traces = traces.clone();
            move |seen| fake_tempo::route(traces.clone(), Mode::NoSelect)(seen)
        });
        let line = analyze_in_child(&old.url, subjects);
        println!(
            "fetch path:   {line}\n  {} searches, {} fetches",
            old.count("/api/search"),
            old.count("/api/v2/traces/"),
        );
    }
}
