//! The Tempo client against captured Tempo responses served over HTTP on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::NoProgress;
use common::replay::{self, Replay, Reply, captured};
use neuro_batch_analysis::source::{
    self, Source, SourceError, TempoSearch, TempoServer, WindowSpec,
};
use neuro_batch_analysis::summary;
use neuro_batch_analysis::table::{self, SpanTable};
use neuro_batch_analysis::tempo::{self, Retry, TempoClient, TempoError, Window};
use neuro_batch_analysis::{AttrValue, Status};

fn client(url: &str) -> TempoClient {
    client_with_deadline(url, Duration::from_secs(60))
}

fn client_with_deadline(url: &str, deadline: Duration) -> TempoClient {
    TempoClient::new(
        url,
        Duration::from_secs(10),
        deadline,
        Retry {
            attempts: 3,
            backoff: Duration::from_millis(1),
        },
    )
    .unwrap()
}

const BULK: Window = Window {
    start: 1_795_494_654,
    end: 1_795_494_775,
};

#[test]
fn a_search_that_hits_its_limit_is_split_until_every_trace_is_found() {
    let tempo = Replay::start(replay::bulk_search);
    let q = tempo::root_query(
        "neuro-batch",
        "process_subject",
        Some(("batch.id", "bulk-1")),
        None,
    );
    let found = tempo::find_traces(&client(&tempo.url), &q, BULK, 50).unwrap();
    assert_eq!(found.traces.len(), 300, "all 300 bulk traces");
    assert!(
        found.requests > 6,
        "{} requests: the window was split",
        found.requests
    );
    assert!(!found.truncated);
    assert!(found.traces.iter().all(|t| t.trace_id.len() == 32));
    // Tempo stripped leading zeros from 20 of these ids; they come back padded.
    let padded = found
        .traces
        .iter()
        .filter(|t| t.trace_id.starts_with('0'))
        .count();
    assert!(padded >= 20, "{padded} ids start with 0");
    assert!(
        found
            .traces
            .windows(2)
            .all(|w| w[0].start_ns <= w[1].start_ns)
    );

    // One request is enough when the limit is not hit.
    let once = tempo::find_traces(&client(&tempo.url), &q, BULK, 1000).unwrap();
    assert_eq!((once.traces.len(), once.requests), (300, 1));
}

#[test]
fn traces_decode_the_same_from_v2_and_from_v1s_base64_batches() {
    let v2 = Replay::start(|s| match s.path.as_str() {
        "/api/v2/traces/bdd640fb06671ad11c80317fa3b1799d" => captured("trace_v2_json.json"),
        _ => Reply::status(404),
    });
    // A Tempo without the v2 route: 404 there, v1 answers.
    let v1 = Replay::start(|s| match s.path.as_str() {
        "/api/traces/bdd640fb06671ad11c80317fa3b1799d" => captured("trace_v1_json.json"),
        "/api/traces/0090bca8707ddcc757a6cb90ebd7957b" => {
            captured("trace_v1_id_from_search_leading_zeros_stripped.json")
        }
        _ => Reply::status(404),
    });
    let id = "bdd640fb06671ad11c80317fa3b1799d";
    let mut a = tempo::fetch_trace(&client(&v2.url), id).unwrap().unwrap();
    let mut b = tempo::fetch_trace(&client(&v1.url), id).unwrap().unwrap();
    assert_eq!(a.len(), 22);
    a.sort_by(|x, y| x.span_id.cmp(&y.span_id));
    b.sort_by(|x, y| x.span_id.cmp(&y.span_id));
    assert_eq!(a, b);
    assert!(
        a.iter()
            .all(|s| s.trace_id == id && s.service == "neuro-batch")
    );
    assert_eq!(a.iter().filter(|s| s.parent_id.is_none()).count(), 1);
    let file = a.iter().find(|s| s.name == "process_file").unwrap();
    assert!(matches!(
        file.attributes["file.size_mb"],
        AttrValue::Float(_)
    ));
    let load = a.iter().find(|s| s.name == "load_file").unwrap();
    assert!(matches!(
        load.attributes["io.bytes_read"],
        AttrValue::Int(_)
    ));

    // The id as search returns it (leading zeros stripped) works too.
    let short = tempo::fetch_trace(&client(&v1.url), "90bca8707ddcc757a6cb90ebd7957b")
        .unwrap()
        .unwrap();
    assert!(
        short
            .iter()
            .all(|s| s.trace_id == "0090bca8707ddcc757a6cb90ebd7957b")
    );
}

#[test]
fn a_missing_trace_is_none_in_both_api_versions() {
    let v2 = Replay::start(|_| captured("trace_v2_notfound.json"));
    let v1 = Replay::start(|s| {
        if s.path.starts_with("/api/v2/") {
            Reply::status(404)
        } else {
            captured("trace_v1_notfound.txt")
        }
    });
    let id = "0123456789abcdef0123456789abcdef";
    assert!(tempo::fetch_trace(&client(&v2.url), id).unwrap().is_none());
    assert!(tempo::fetch_trace(&client(&v1.url), id).unwrap().is_none());
}

#[test]
fn tempo_error_lines_reach_the_user() {
    for (fixture, expected) in [
        (
            "search_traceql_malformed.txt",
            "invalid TraceQL query: parse error at line 1",
        ),
        (
            "search_bad_start_end.txt",
            "http parameter start must be before end",
        ),
        (
            "search_traceql_limit_over_max.txt",
            "limit 300000 exceeds max limit 262144",
        ),
    ] {
        let tempo = Replay::start(move |_| captured(fixture));
        let err = tempo::find_traces(&client(&tempo.url), "{}", BULK, 10).unwrap_err();
        match &err {
            TempoError::Status { status, body, .. } => {
                assert_eq!(status.as_u16(), 400);
                assert!(body.starts_with(expected), "{body}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains(expected));
        assert_eq!(tempo.count("/"), 1, "a 400 is not retried");
    }
    let tempo = Replay::start(|_| captured("trace_v1_malformed_id.txt"));
    let err = tempo::fetch_trace(&client(&tempo.url), "0").unwrap_err();
    assert!(
        err.to_string()
            .contains("trace IDs can only contain hex characters"),
        "{err}"
    );
}

#[test]
fn transient_failures_are_retried_then_reported() {
    let calls = AtomicUsize::new(0);
    let tempo = Replay::start(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::status(503),
        1 => {
            let mut r = Reply::status(429);
            r.headers.push(("Retry-After".into(), "0".into()));
            r
        }
        _ => captured("search_traceql_roots_window.json"),
    });
    let found = tempo::find_traces(&client(&tempo.url), "{}", BULK, 100).unwrap();
    assert_eq!(found.traces.len(), 6);
    assert_eq!(tempo.count("/api/search"), 3);

    let down = Replay::start(|_| Reply::status(500));
    let err = tempo::find_traces(&client(&down.url), "{}", BULK, 100).unwrap_err();
    assert!(matches!(err, TempoError::Status { .. }), "{err:?}");
    assert_eq!(down.count("/api/search"), 4, "first try and 3 retries");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = tempo::find_traces(&client(&format!("http://127.0.0.1:{port}")), "{}", BULK, 10)
        .unwrap_err();
    assert!(matches!(err, TempoError::Unreachable { .. }), "{err:?}");
}

#[test]
fn empty_searches_are_empty_not_errors() {
    for fixture in [
        "search_traceql_window_in_past.json",
        "cutoff_search_2s_after_send.json",
    ] {
        let tempo = Replay::start(move |_| captured(fixture));
        let found = tempo::find_traces(&client(&tempo.url), "{}", BULK, 10).unwrap();
        assert!(found.traces.is_empty());
    }
}

#[test]
fn run1_fetches_what_tempo_has_and_finds_the_failed_subject() {
    let tempo = Replay::start(replay::run1);
    let c = client(&tempo.url);
    let found = tempo::find_traces(
        &c,
        &tempo::root_query("neuro-batch", "process_subject", None, None),
        Window {
            start: 1_795_494_143,
            end: 1_795_494_385,
        },
        1000,
    )
    .unwrap();
    assert_eq!(found.traces.len(), 6);
    let ids: Vec<String> = found.traces.iter().map(|t| t.trace_id.clone()).collect();
    let done = AtomicUsize::new(0);
    let fetched = tempo::fetch_traces(&c, &ids, 4, &|| {
        done.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!((fetched.fetched, fetched.missing.len()), (2, 4));
    assert_eq!(done.load(Ordering::Relaxed), 6);
    assert_eq!(fetched.spans.len(), 22 + 20);

    let t = SpanTable::build(fetched.spans).unwrap();
    let failures = summary::failures(&t, "subject.id").unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].label.as_deref(), Some("sub-04"));
    assert_eq!(failures[0].span, "bias_correction");
    assert!(failures[0].message.is_some());
    // Stage spans inherit their file's size.
    let stages = t.of_name("skull_strip").unwrap();
    assert!(
        stages
            .floats("file.size_mb")
            .unwrap()
            .iter()
            .all(Option::is_some)
    );
    // Per trace, critical-path time adds up to the root's duration.
    let roots = t.roots().unwrap();
    let root_total: f64 = roots
        .floats(table::DURATION_MS)
        .unwrap()
        .iter()
        .flatten()
        .sum();
    let critical: f64 = t.floats(table::CRITICAL_MS).unwrap().iter().flatten().sum();
    assert!(
        (root_total - critical).abs() < 1e-6,
        "{root_total} vs {critical}"
    );
    let statuses = t.strings(table::STATUS).unwrap();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| s.as_deref() == Some(Status::Error.as_str()))
            .count(),
        4
    );
}

#[test]
fn a_slow_tempo_is_given_up_on_at_the_deadline() {
    // Every trace answer takes 3 s; the whole load may take 2 s.
    let tempo = Replay::start(|seen| {
        if seen.path.starts_with("/api/v2/traces/") {
            std::thread::sleep(Duration::from_secs(3));
        }
        replay::run1(seen)
    });
    let source = Source::Tempo(
        TempoServer {
            url: tempo.url.clone(),
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(2),
        },
        Box::new(TempoSearch {
            window: WindowSpec::Between(1_795_494_143, 1_795_494_385),
            service: "neuro-batch".into(),
            root_span: "process_subject".into(),
            batch: None,
            query: None,
            attributes: Vec::new(),
            concurrency: 1,
            limit: 1000,
        }),
    );
    let err = source::load(&source, &NoProgress).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            SourceError::NoneFetched {
                error: TempoError::Deadline { .. },
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("2-second deadline"), "{text}");
}

#[test]
fn a_huge_retry_after_is_capped_by_the_deadline() {
    let calls = AtomicUsize::new(0);
    let tempo = Replay::start(move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let mut r = Reply::status(429);
            r.headers.push(("Retry-After".into(), "100000".into()));
            r
        } else {
            captured("search_traceql_roots_window.json")
        }
    });
    // Obeying Retry-After would wait 27 hours; the 1-second deadline ends it.
    let err = tempo::find_traces(
        &client_with_deadline(&tempo.url, Duration::from_secs(1)),
        "{}",
        BULK,
        100,
    )
    .unwrap_err();
    assert!(matches!(err, TempoError::Deadline { .. }), "{err:?}");
    assert_eq!(tempo.count("/api/search"), 1);
}

#[test]
fn a_web_page_is_not_taken_for_tempo() {
    let page = Replay::start(|_| Reply {
        status: 200,
        content_type: Some("text/html; charset=utf-8".into()),
        body: b"<!DOCTYPE html><html><title>Grafana</title></html>".to_vec(),
        headers: Vec::new(),
    });
    let err = tempo::find_traces(&client(&page.url), "{}", BULK, 10).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TempoError::NotTempo { .. }), "{text}");
    assert!(
        text.contains("did not answer like Tempo's API")
            && text.contains("text/html")
            && text.contains("<!DOCTYPE html>"),
        "{text}"
    );
}
