//! The retraining webhook call (docs/reference/jobs.md): JSON body, `Idempotency-Key`, optional bearer token
//! and HMAC signature, retries with exponential backoff and jitter on connection errors, timeouts, 5xx and 429
//! (honouring `Retry-After`); other 4xx fail at once. The response body is read up to [`MAX_RESPONSE_BYTES`]
//! and a returned job id is kept only up to [`MAX_JOB_ID_LEN`], so no answer can make the result document
//! too large; the URL (which may hold a token) appears in no error text beyond its origin. Network I/O; the
//! retry schedule and the response parsing are pure.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::job::redact::redact_urls;

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Driftwatch-Signature";
/// Header carrying the DriftEvent's uid.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Most bytes of a response body read (enough for any job id; the rest is not read).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest job id recorded; a longer one is left out (the delivery still succeeded).
pub const MAX_JOB_ID_LEN: usize = 256;

/// A time window as the original REST API spells it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WindowBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// The webhook's JSON body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WebhookBody {
    /// `<namespace>/<name>`, as in the REST API.
    pub event_id: String,
    pub monitor: String,
    pub s3_uri: String,
    pub sha256: String,
    /// Points in the archive.
    pub sample_size: u64,
    pub reference_window: WindowBody,
    pub comparison_window: WindowBody,
    pub drift_scores: serde_json::Value,
    pub approved_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The DriftEvent's uid (also the Idempotency-Key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_uid: Option<String>,
    pub size_bytes: u64,
}

/// Retry schedule: `retries` after the first attempt, delays `base · 2^n` with ±50 % jitter capped at
/// `max_delay`; a `Retry-After` replaces the computed delay (capped at `max_retry_after`).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base: Duration,
    pub max_delay: Duration,
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1-based), given a jitter factor in [0, 1) and any Retry-After.
    pub fn delay(&self, retry: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(20));
        // Jitter first, then the cap: no delay ever exceeds max_delay.
        exp.mul_f64(0.5 + jitter.clamp(0.0, 1.0)).min(self.max_delay)
    }
}

/// Where and how to call.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub url: String,
    pub token: Option<String>,
    pub hmac_key: Option<String>,
    pub idempotency_key: String,
    /// Per attempt.
    pub timeout: Duration,
    pub policy: RetryPolicy,
}

/// One attempt, for the log and the retry timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub number: u32,
    /// Since the first attempt started.
    pub at: Duration,
    /// HTTP status, or None for a transport error / timeout.
    pub status: Option<u16>,
    pub detail: String,
    /// Wait before the next attempt, when there is one.
    pub wait: Option<Duration>,
}

/// A delivered webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub attempts: Vec<Attempt>,
    /// `job_id` or `retraining_job_id` from the response body.
    pub job_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook URL is not an http(s) URL ({0})")]
    BadUrl(String),
    #[error("building the HTTP client: {0}")]
    Client(String),
    #[error("the webhook rejected the request with HTTP {status}: {body}")]
    Rejected {
        status: u16,
        body: String,
        attempts: Vec<Attempt>,
    },
    #[error("the webhook failed {} times, last: {last}", attempts.len())]
    Exhausted { last: String, attempts: Vec<Attempt> },
}

impl WebhookError {
    pub fn attempts(&self) -> u32 {
        match self {
            WebhookError::Rejected { attempts, .. } | WebhookError::Exhausted { attempts, .. } => {
                attempts.len() as u32
            }
            _ => 0,
        }
    }
}

/// `sha256=<hex>` HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The retraining job id in a 2xx response body, if any (`job_id` or `retraining_job_id`, string or number);
/// an id longer than [`MAX_JOB_ID_LEN`] bytes is not recorded.
pub fn job_id_from_response(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = ["job_id", "retraining_job_id", "jobId", "retrainingJobId"]
        .iter()
        .find_map(|k| match value.get(*k)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })?;
    if id.len() > MAX_JOB_ID_LEN {
        tracing::warn!(
            length = id.len(),
            max = MAX_JOB_ID_LEN,
            "the webhook's job id is too long to record; left out"
        );
        return None;
    }
    Some(id)
}

/// What the server at `url` is, for messages: `scheme://host[:port]`, never the path or query.
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => redact_urls(url.as_str()),
        Err(_) => "unparseable".to_string(),
    }
}

/// Reads at most `max` bytes of the body; the rest is left unread (the connection is dropped).
async fn read_capped(response: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= max {
            break;
        }
    }
    Ok(body)
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let secs = date.duration_since(now).as_secs_f64();
    Some(Duration::from_secs_f64(secs.max(0.0)))
}

enum Verdict {
    Done(Option<String>),
    Retry(Option<Duration>, String),
    Fail(u16, String),
}

/// Posts `body` with retries. Returns the delivery, or why it failed (with every attempt).
pub async fn deliver(settings: &WebhookSettings, body: &WebhookBody) -> Result<Delivery, WebhookError> {
    let url = reqwest::Url::parse(&settings.url).map_err(|_| WebhookError::BadUrl(origin(&settings.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookError::BadUrl(origin(&settings.url)));
    }
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("driftwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| WebhookError::Client(e.to_string()))?;
    let bytes = serde_json::to_vec(body).map_err(|e| WebhookError::Client(e.to_string()))?;
    let signature = settings
        .hmac_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| signature(k.as_bytes(), &bytes));
    let start = Instant::now();
    let mut attempts: Vec<Attempt> = Vec::new();
    let total = settings.policy.retries + 1;
    for number in 1..=total {
        let at = start.elapsed();
        let mut request = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &settings.idempotency_key)
            .body(bytes.clone());
        if let Some(token) = settings.token.as_deref().filter(|t| !t.is_empty()) {
            request = request.bearer_auth(token);
        }
        if let Some(sig) = &signature {
            request = request.header(SIGNATURE_HEADER, sig);
        }
        let (status, verdict) = match request.send().await {
            Ok(mut response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
                let text = match read_capped(&mut response, MAX_RESPONSE_BYTES).await {
                    Ok(b) => b,
                    Err(e) => e.without_url().to_string().into_bytes(),
                };
                let snippet: String = String::from_utf8_lossy(&text).chars().take(300).collect();
                let snippet = redact_urls(&snippet);
                let verdict = if status.is_success() {
                    Verdict::Done(job_id_from_response(&text))
                } else if status.as_u16() == 429 || status.is_server_error() {
                    Verdict::Retry(retry_after, format!("HTTP {}: {snippet}", status.as_u16()))
                } else {
                    Verdict::Fail(status.as_u16(), snippet)
                };
                (Some(status.as_u16()), verdict)
            }
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                // reqwest's text names the whole URL: keep only its origin.
                let err = err.without_url();
                (
                    None,
                    Verdict::Retry(None, format!("{kind} ({}): {err}", origin(&settings.url))),
                )
            }
        };
        let mut attempt = Attempt {
            number,
            at,
            status,
            detail: String::new(),
            wait: None,
        };
        match verdict {
            Verdict::Done(job_id) => {
                attempt.detail = "delivered".into();
                tracing::info!(attempt = number, ?status, ?job_id, "webhook delivered");
                attempts.push(attempt);
                return Ok(Delivery { attempts, job_id });
            }
            Verdict::Fail(code, body) => {
                attempt.detail = format!("HTTP {code}");
                tracing::warn!(attempt = number, status = code, "webhook rejected the request");
                attempts.push(attempt);
                return Err(WebhookError::Rejected {
                    status: code,
                    body,
                    attempts,
                });
            }
            Verdict::Retry(retry_after, detail) => {
                attempt.detail = detail.clone();
                if number == total {
                    tracing::warn!(attempt = number, %detail, "webhook attempt failed; no retries left");
                    attempts.push(attempt);
                    return Err(WebhookError::Exhausted {
                        last: detail,
                        attempts,
                    });
                }
                let jitter: f64 = rand::rng().random();
                let wait = settings.policy.delay(number, jitter, retry_after);
                attempt.wait = Some(wait);
                tracing::warn!(attempt = number, %detail, wait_ms = wait.as_millis() as u64, "webhook attempt failed; retrying");
                attempts.push(attempt);
                tokio::time::sleep(wait).await;
            }
        }
    }
    Err(WebhookError::Exhausted {
        last: "no attempt made".into(),
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_stay_under_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(1, 0.5, None), Duration::from_secs(1));
        assert_eq!(policy.delay(2, 0.5, None), Duration::from_secs(2));
        assert_eq!(policy.delay(3, 0.5, None), Duration::from_secs(3));
        assert_eq!(policy.delay(1, 0.0, None), Duration::from_millis(500));
        assert_eq!(policy.delay(2, 1.0, None), Duration::from_secs(3));
        assert_eq!(policy.delay(9, 1.0, None), Duration::from_secs(3));
    }

    #[test]
    fn retry_after_replaces_the_backoff_but_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, 0.3, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            policy.delay(1, 0.3, Some(Duration::from_secs(100_000))),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-11-26T20:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 20:00:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn the_job_id_is_read_from_either_field() {
        assert_eq!(
            job_id_from_response(br#"{"job_id":"j-1"}"#).as_deref(),
            Some("j-1")
        );
        assert_eq!(
            job_id_from_response(br#"{"retraining_job_id":42}"#).as_deref(),
            Some("42")
        );
        assert_eq!(job_id_from_response(b"ok"), None);
    }

    #[test]
    fn a_job_id_longer_than_the_cap_is_left_out() {
        let at_cap = "j".repeat(MAX_JOB_ID_LEN);
        let body = serde_json::json!({"job_id": at_cap}).to_string();
        assert_eq!(job_id_from_response(body.as_bytes()), Some(at_cap));
        let body = serde_json::json!({"job_id": "j".repeat(MAX_JOB_ID_LEN + 1)}).to_string();
        assert_eq!(job_id_from_response(body.as_bytes()), None);
    }

    #[test]
    fn a_bad_url_error_names_only_the_origin() {
        let err = WebhookError::BadUrl(origin("ftp://hooks.example/x?token=SECRET"));
        assert_eq!(
            err.to_string(),
            "the webhook URL is not an http(s) URL (ftp://hooks.example)"
        );
        assert_eq!(origin("not a url token=SECRET"), "unparseable");
    }

    #[test]
    fn the_signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
