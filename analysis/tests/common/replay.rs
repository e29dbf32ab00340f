//! A replay of Grafana Tempo's HTTP API on 127.0.0.1, answering with responses captured from a
//! real Tempo (`fixtures/tempo/`). Shared by the analysis crate's tests and the CLI's.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One answer.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A bare status with an empty body (for statuses no capture holds, e.g. 503).
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            content_type: None,
            body: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// JSON built by the test from captured pieces.
    pub fn json(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            content_type: Some("application/json".into()),
            body,
            headers: Vec::new(),
        }
    }
}

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        if env!("CARGO_MANIFEST_DIR").ends_with("analysis") {
            "tests/fixtures/tempo"
        } else {
            "analysis/tests/fixtures/tempo"
        },
    )
}

/// A captured file's body.
pub fn body(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A captured response: body, status and Content-Type as Tempo sent them.
pub fn captured(name: &str) -> Reply {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let headers = std::fs::read_to_string(fixtures().join("_headers").join(format!("{stem}.txt")))
        .unwrap_or_else(|e| panic!("headers of {name}: {e}"));
    let mut lines = headers.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned());
    Reply {
        status,
        content_type,
        body: body(name),
        headers: Vec::new(),
    }
}

/// A request as the replay saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: HashMap<String, String>,
    /// The Accept header, when sent.
    pub accept: Option<String>,
}

type Route = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A running replay server; stops when dropped.
pub struct Replay {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Replay {
    pub fn start(route: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Replay {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let url = format!(
            "http://{}",
            server.server_addr().to_ip().expect("ip address")
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Route> = Arc::new(route);
        let thread = {
            let (server, seen) = (server.clone(), seen.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let parsed = url::Url::parse(&format!("http://x{}", request.url())).unwrap();
                    let s = Seen {
                        path: parsed.path().to_owned(),
                        query: parsed.query_pairs().into_owned().collect(),
                        accept: request
                            .headers()
                            .iter()
                            .find(|h| h.field.equiv("Accept"))
                            .map(|h| h.value.to_string()),
                    };
                    seen.lock().unwrap().push(s.clone());
                    let reply = route(&s);
                    let mut response =
                        tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
                    if let Some(ct) = reply.content_type {
                        response
                            .add_header(tiny_http::Header::from_bytes("Content-Type", ct).unwrap());
                    }
                    for (k, v) in reply.headers {
                        response.add_header(tiny_http::Header::from_bytes(k, v).unwrap());
                    }
                    let _ = request.respond(response);
                }
            })
        };
        Replay {
            url,
            seen,
            server,
            thread: Some(thread),
        }
    }

    /// Requests seen so far whose path starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .count()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// run1 as Tempo holds it: the window search finds the 6 subjects; of their traces the
/// captures hold sub-01 (v2) and sub-04 (v2, failed in bias_correction); the others answer as
/// Tempo does for an id it does not have. No capture holds run1 searched with `select(...)`,
/// so such a search is refused with Tempo's 400 for a query it cannot parse, as an older Tempo
/// would: run1 exercises the fetch-everything path.
pub fn run1(seen: &Seen) -> Reply {
    match seen.path.as_str() {
        "/api/search" if seen.query.get("q").is_some_and(|q| q.contains("select(")) => {
            captured("search_traceql_malformed.txt")
        }
        "/api/search" => captured("search_traceql_roots_window.json"),
        "/api/v2/traces/bdd640fb06671ad11c80317fa3b1799d" => captured("trace_v2_json.json"),
        "/api/v2/traces/7fcd9eb1a7cad415366eb16f508ebad7" => {
            captured("trace_v2_error_subject.json")
        }
        p if p.starts_with("/api/v2/traces/") => captured("trace_v2_notfound.json"),
        _ => Reply::status(404),
    }
}

/// The 300 bulk traces, searched like Tempo: those starting inside [start, end], at most
/// `limit` of them (default 20).
pub fn bulk_search(seen: &Seen) -> Reply {
    let all: serde_json::Value =
        serde_json::from_slice(&body("bulk300_search_limit1000.json")).unwrap();
    let start: i64 = seen.query["start"].parse().unwrap();
    let end: i64 = seen.query["end"].parse().unwrap();
    let limit: usize = seen.query.get("limit").map_or(20, |l| l.parse().unwrap());
    let traces: Vec<serde_json::Value> = all["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            let ns: i64 = t["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
            (start..=end).contains(&(ns / 1_000_000_000))
        })
        .take(limit)
        .cloned()
        .collect();
    let mut reply = all.clone();
    reply["traces"] = serde_json::Value::Array(traces);
    Reply::json(serde_json::to_vec(&reply).unwrap())
}
