//! HTTP access to Tempo's API: timeouts, an overall deadline, retries with backoff, and errors
//! that say what Tempo answered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;

/// Why a request to Tempo failed.
#[derive(Debug, thiserror::Error)]
pub enum TempoError {
    /// No answer (connection refused, DNS, timeout), after retries.
    #[error(
        "cannot reach Tempo at {url}: {source} (is Tempo running? `docker compose up -d` starts the local stack)"
    )]
    Unreachable {
        /// The request URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// Tempo answered with an error status; `body` is its one-line text message.
    #[error("Tempo answered {status} for {url}: {body}")]
    Status {
        /// The request URL.
        url: String,
        /// HTTP status.
        status: StatusCode,
        /// The body, trimmed (Tempo's 4xx bodies are one line of text; may be empty).
        body: String,
    },
    /// The overall deadline passed before this request could be made or answered.
    #[error("gave up on {url}: the {}-second deadline passed (--deadline)", deadline.as_secs())]
    Deadline {
        /// The request URL.
        url: String,
        /// The deadline, from the client's creation.
        deadline: Duration,
    },
    /// Something answered, but not Tempo's API (a web page, a proxy's login form...).
    #[error(
        "{url} did not answer like Tempo's API (Content-Type {content_type}, starts with \
         {start:?}): is --tempo the API's address (port 3200), not Grafana's?"
    )]
    NotTempo {
        /// The request URL.
        url: String,
        /// The answer's Content-Type.
        content_type: String,
        /// Its first bytes, as text.
        start: String,
    },
    /// The body is not the JSON this endpoint returns.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// The request URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// Retry policy for transient failures (429, 5xx, timeouts, refused connections).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// First backoff; doubles after each retry (a `Retry-After` header wins when given).
    pub backoff: Duration,
}

/// The longest `Retry-After` obeyed: a server asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

/// A Tempo HTTP API client.
#[derive(Debug, Clone)]
pub struct TempoClient {
    base: String,
    http: Client,
    retry: Retry,
    timeout: Duration,
    deadline: (Instant, Duration),
}

impl TempoClient {
    /// A client for the Tempo at `base` (e.g. `http://localhost:3200`), with a per-request
    /// timeout and an overall `deadline` from now: every request, retry and wait ends by then.
    pub fn new(
        base: &str,
        timeout: Duration,
        deadline: Duration,
        retry: Retry,
    ) -> Result<Self, TempoError> {
        let http = Client::builder()
            .user_agent(concat!("neuro-batch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| TempoError::Unreachable {
                url: base.to_owned(),
                source,
            })?;
        Ok(TempoClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
            retry,
            timeout,
            deadline: (Instant::now() + deadline, deadline),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Time left before the deadline, or the error saying it passed.
    fn left(&self, url: &str) -> Result<Duration, TempoError> {
        let (at, deadline) = self.deadline;
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TempoError::Deadline {
                url: url.to_owned(),
                deadline,
            });
        }
        Ok(left)
    }

    /// GETs `path` with query parameters and returns the body of a 2xx answer. 429, 5xx and
    /// transport errors are retried (never past the deadline); other statuses fail at once
    /// with Tempo's message.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, TempoError> {
        self.get_accepting(path, query, None).map(|a| a.body)
    }

    /// [`TempoClient::get`], asking for `accept` (e.g. `application/protobuf`); the answer says
    /// which Content-Type came back.
    pub fn get_accepting(
        &self,
        path: &str,
        query: &[(&str, String)],
        accept: Option<&str>,
    ) -> Result<Answer, TempoError> {
        let url = format!("{}{}", self.base, path);
        let mut backoff = self.retry.backoff;
        let mut attempt = 0;
        loop {
            let left = self.left(&url)?;
            let mut request = self.http.get(&url).query(query);
            if let Some(accept) = accept {
                request = request.header(reqwest::header::ACCEPT, accept);
            }
            let outcome = request.timeout(self.timeout.min(left)).send();
            let retry_after = match outcome {
                Ok(resp) if resp.status().is_success() => return self.body(&url, resp),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !transient || attempt >= self.retry.attempts {
                        let body = resp.text().unwrap_or_default();
                        return Err(TempoError::Status {
                            url,
                            status,
                            body: body.trim().to_owned(),
                        });
                    }
                    retry_after
                }
                Err(source) => {
                    if source.is_timeout() {
                        self.left(&url)?;
                    }
                    if attempt >= self.retry.attempts {
                        return Err(TempoError::Unreachable { url, source });
                    }
                    None
                }
            };
            let wait = retry_after.map_or(backoff, |w| w.min(MAX_RETRY_AFTER));
            std::thread::sleep(wait.min(self.left(&url)?));
            backoff *= 2;
            attempt += 1;
        }
    }

    /// The body of a successful answer, refused when it is a web page rather than the API's
    /// JSON or protobuf.
    fn body(&self, url: &str, resp: reqwest::blocking::Response) -> Result<Answer, TempoError> {
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        let body = resp
            .bytes()
            .map(|b| b.to_vec())
            .map_err(|source| TempoError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        let looks_like_markup = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'<');
        if content_type.contains("html") || looks_like_markup {
            let start: String = String::from_utf8_lossy(&body[..body.len().min(60)])
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            return Err(TempoError::NotTempo {
                url: url.to_owned(),
                content_type,
                start,
            });
        }
        Ok(Answer { content_type, body })
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Its Content-Type (`none` when absent).
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Whether the body is protobuf (`application/protobuf`, `application/x-protobuf`).
    pub fn is_protobuf(&self) -> bool {
        self.content_type.contains("protobuf")
    }
}
