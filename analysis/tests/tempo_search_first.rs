//! Search-first: the captured search-with-select decodes the same from JSON and protobuf, and
//! a run served the way Tempo serves it gives the same spans, table and report by search-first
//! as by fetching every trace, fetching only the traces it must.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::NoProgress;
use common::fake_tempo::{self, Mode, Shape, search};
use common::replay::{Replay, Reply, captured};
use neuro_batch_analysis::rank::RankOptions;
use neuro_batch_analysis::source::{self, Source, TempoServer};
use neuro_batch_analysis::tempo::{self, Retry, TempoClient, Window};
use neuro_batch_analysis::{ReportOptions, Span, SpanTable, Status, report};

const CAPTURED: Window = Window {
    start: 1_796_190_840,
    end: 1_796_191_240,
};

fn client(url: &str) -> TempoClient {
    TempoClient::new(
        url,
        Duration::from_secs(10),
        Duration::from_secs(60),
        Retry::default(),
    )
    .unwrap()
}

#[test]
fn the_captured_search_decodes_the_same_from_json_and_protobuf() {
    let tempo = Replay::start(|seen| match seen.accept.as_deref() {
        Some("application/protobuf") => captured("scale10k_search_select_tree_limit3_protobuf.pb"),
        _ => captured("scale10k_search_select_tree_limit3.json"),
    });
    let q = tempo::select_query(
        r#"{resource.service.name="neuro-batch"}"#,
        &[
            "file.size_mb".into(),
            "bids.subject".into(),
            "array.voxels".into(),
        ],
    );
    // The capture was taken with limit=3; a larger limit here keeps the window whole (a full
    // answer would be sliced, and the replay answers every slice the same).
    let found = tempo::search_spansets(&client(&tempo.url), &q, CAPTURED, 1000, "neuro-batch")
        .expect("search");
    assert_eq!(found.requests, 1);
    assert!(found.protobuf, "Tempo answered the Accept header");
    assert_eq!(found.traces.len(), 3);
    let seen = tempo.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.query["q"], q);
    assert_eq!(seen.query["spss"], "100");

    let json = tempo::decode_json(
        &captured("scale10k_search_select_tree_limit3.json").body,
        "neuro-batch",
    )
    .unwrap();
    let mut from_json = json.clone();
    from_json.sort_by_key(|t| t.start_ns);
    // Attribute order differs between the two captures; the spans do not.
    let sorted = |mut spans: Vec<Span>| {
        spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
        spans
    };
    for (a, b) in found.traces.iter().zip(&from_json) {
        assert_eq!(a.trace_id, b.trace_id);
        assert_eq!(sorted(a.spans.clone()), sorted(b.spans.clone()));
    }

    for trace in &found.traces {
        assert!(!trace.cut, "matched 8, 8 returned");
        assert_eq!(trace.trace_id.len(), 32);
        assert_eq!(trace.spans.len(), 8);
        let roots: Vec<&Span> = trace
            .spans
            .iter()
            .filter(|s| s.parent_id.is_none())
            .collect();
        assert_eq!(roots.len(), 1, "the all-zero parent id is a root");
        assert_eq!(roots[0].name, "process_subject");
        // Every other span's parent is in the trace: the tree is whole.
        for s in &trace.spans {
            if let Some(p) = &s.parent_id {
                assert!(trace.spans.iter().any(|o| &o.span_id == p), "{s:?}");
            }
            assert_eq!(s.service, "neuro-batch");
            assert_eq!(s.status, Status::Ok, "span:status ok");
            assert!(!s.attributes.contains_key("span:parentID"));
            assert!(!s.attributes.contains_key("status"));
            assert!(s.end_ns > s.start_ns);
        }
        let load = trace.spans.iter().find(|s| s.name == "load_file").unwrap();
        assert!(load.attributes["file.size_mb"].as_f64().unwrap() > 0.0);
        assert!(load.attributes["array.voxels"].as_f64().unwrap() > 1000.0);
    }
    let table = SpanTable::build(found.traces.into_iter().flat_map(|t| t.spans).collect());
    assert_eq!(table.unwrap().roots().unwrap().len(), 3);
}

fn server(url: &str) -> TempoServer {
    TempoServer {
        url: url.to_owned(),
        timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(120),
    }
}

fn sorted(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by(|a, b| (&a.trace_id, &a.span_id).cmp(&(&b.trace_id, &b.span_id)));
    spans
}

/// Equal span lists, or the first difference.
fn assert_same(a: &[Span], b: &[Span], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: span counts");
    if let Some((x, y)) = a.iter().zip(b).find(|(x, y)| x != y) {
        panic!("{what} differ first at\n{x:?}\n{y:?}");
    }
}

fn report_without_source(spans: Vec<Span>) -> serde_json::Value {
    let table = SpanTable::build(spans).unwrap();
    let options = ReportOptions {
        rank: RankOptions {
            min_count: 5,
            ..RankOptions::default()
        },
        label_attribute: "bids.subject".into(),
        grafana: None,
        slowest: 5,
    };
    let mut json = serde_json::to_value(
        report::build(
            &table,
            neuro_batch_analysis::SourceInfo::default(),
            &options,
        )
        .unwrap(),
    )
    .unwrap();
    json.as_object_mut().unwrap().remove("source");
    json
}

#[test]
fn search_first_gives_the_fetch_paths_spans_and_report_and_fetches_only_what_it_must() {
    let shape = Shape {
        subjects: 240,
        fail_every: 40,
        many_files_every: 60,
        many_files: 15, // 1 + 15 × 7 = 106 spans: more than spss=100, so cut
        start_s: 1_796_190_850,
    };
    let stored = Arc::new(fake_tempo::subjects(shape));
    // Failed: subjects 39, 79, ...; cut: 0, 60, ... (no subject is both).
    let expected_fetches = shape.subjects / 40 + shape.subjects / 60;

    for accept_protobuf in [true, false] {
        let store = stored.clone();
        let tempo = Replay::start(move |seen| {
            let mut seen = seen.clone();
            if !accept_protobuf {
                seen.accept = None; // a Tempo that answers JSON whatever is asked
            }
            fake_tempo::route(store.clone(), Mode::Current)(&seen)
        });
        let first = source::load(
            &Source::Tempo(server(&tempo.url), search(shape)),
            &NoProgress,
        )
        .unwrap();
        assert_eq!(
            tempo.count("/api/v2/traces/"),
            expected_fetches,
            "only cut and failed traces are fetched"
        );
        assert_eq!(tempo.count("/api/search"), 1, "one search for the window");
        let notes = first.info.notes.join("\n");
        let encoding = if accept_protobuf { "protobuf" } else { "JSON" };
        assert!(
            notes.contains(&format!("search-first ({encoding}): 240 traces")),
            "{notes}"
        );

        let old = Replay::start({
            let store = stored.clone();
            move |seen| fake_tempo::route(store.clone(), Mode::NoSelect)(seen)
        });
        let fetched =
            source::load(&Source::Tempo(server(&old.url), search(shape)), &NoProgress).unwrap();
        assert_eq!(old.count("/api/v2/traces/"), shape.subjects);
        assert!(
            fetched
                .info
                .notes
                .join("\n")
                .contains("refused the search with select"),
            "{:?}",
            fetched.info.notes
        );

        let expected = sorted(stored.iter().flatten().cloned().collect());
        let (a, b) = (sorted(first.spans), sorted(fetched.spans));
        assert_same(&a, &b, "search-first and the fetch path");
        assert_same(&a, &expected, "search-first and the stored spans");
        assert_eq!(report_without_source(a), report_without_source(b));
    }
}

#[test]
fn the_root_and_batch_filters_apply_to_search_first_too() {
    let shape = Shape {
        subjects: 30,
        fail_every: 0,
        many_files_every: 0,
        many_files: 0,
        start_s: 1_796_190_850,
    };
    let stored = Arc::new(fake_tempo::subjects(shape));
    let tempo = Replay::start({
        let store = stored.clone();
        move |seen| fake_tempo::route(store.clone(), Mode::Current)(seen)
    });
    let mut other_batch = search(shape);
    other_batch.batch = Some(("batch.id".into(), "run-2".into()));
    let err =
        source::load(&Source::Tempo(server(&tempo.url), other_batch), &NoProgress).unwrap_err();
    assert!(
        err.to_string().contains("has no process_subject traces"),
        "{err}"
    );

    // A body that is not protobuf, labelled protobuf: a decode error naming the URL.
    let broken = Replay::start(|seen| match seen.path.as_str() {
        "/api/search" => Reply {
            status: 200,
            content_type: Some("application/protobuf".into()),
            body: vec![0x0a, 0x7f, 0x01],
            headers: Vec::new(),
        },
        _ => Reply::status(404),
    });
    let err = source::load(
        &Source::Tempo(server(&broken.url), search(shape)),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("/api/search"), "{err}");
}
