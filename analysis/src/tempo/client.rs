//! HTTP access to Tempo's API: timeouts, retries with backoff, and errors that say what Tempo
//! answered.

use std::time::Duration;

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
}

impl TempoClient {
    /// A client for the Tempo at `base` (e.g. `http://localhost:3200`), with a per-request
    /// timeout.
    pub fn new(base: &str, timeout: Duration, retry: Retry) -> Result<Self, TempoError> {
        let http = Client::builder()
            .timeout(timeout)
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
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path` with query parameters and returns the body of a 2xx answer. 429, 5xx and
    /// transport errors are retried; other statuses fail at once with Tempo's message.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, TempoError> {
        let url = format!("{}{}", self.base, path);
        let mut backoff = self.retry.backoff;
        let mut attempt = 0;
        loop {
            let outcome = self.http.get(&url).query(query).send();
            let retry_after = match outcome {
                Ok(resp) if resp.status().is_success() => {
                    return resp.bytes().map(|b| b.to_vec()).map_err(|source| {
                        TempoError::Unreachable {
                            url: url.clone(),
                            source,
                        }
                    });
                }
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
                    if attempt >= self.retry.attempts {
                        return Err(TempoError::Unreachable { url, source });
                    }
                    None
                }
            };
            std::thread::sleep(retry_after.unwrap_or(backoff).min(Duration::from_secs(30)));
            backoff *= 2;
            attempt += 1;
        }
    }
}
