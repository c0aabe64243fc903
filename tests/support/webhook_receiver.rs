//! A real HTTP webhook receiver for tests (axum on a loopback port): answers from a script (fail N times,
//! always 500, 400, slow, 429 with Retry-After, then succeed) and records every request with its arrival
//! time, headers and body. Network I/O.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this JSON body.
    Ok(serde_json::Value),
    /// This status and a short body.
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    TooMany(u64),
    /// Sleep this long, then 200 (to outlast the client's timeout).
    Slow(Duration),
    /// 200 with a 64 MiB body of spaces, produced in 64 KiB chunks as the client reads.
    Huge,
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Since the receiver started.
    pub at: Duration,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Vec<Reply>>,
    received: Arc<Mutex<Vec<Received>>>,
    started: Instant,
    body_bytes: Arc<AtomicUsize>,
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    body_bytes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver answering the n-th request with `script[n]` (the last entry repeats).
    pub async fn start(script: Vec<Reply>) -> Receiver {
        Self::start_on("127.0.0.1:0", script).await
    }

    /// Starts a receiver on `listen` (e.g. `0.0.0.0:8080` inside a Pod).
    pub async fn start_on(listen: &str, script: Vec<Reply>) -> Receiver {
        let shared = Shared {
            script: Arc::new(script),
            received: Arc::new(Mutex::new(Vec::new())),
            started: Instant::now(),
            body_bytes: Arc::new(AtomicUsize::new(0)),
        };
        let received = shared.received.clone();
        let body_bytes = shared.body_bytes.clone();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            received,
            body_bytes,
            task,
        }
    }

    /// Bytes of `Huge` bodies produced so far (a chunk is produced when the connection takes it).
    pub fn body_bytes_produced(&self) -> usize {
        self.body_bytes.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let n = {
        let mut received = shared.received.lock().expect("lock");
        received.push(Received {
            at: shared.started.elapsed(),
            headers,
            body,
        });
        received.len() - 1
    };
    let reply = shared
        .script
        .get(n)
        .or_else(|| shared.script.last())
        .cloned()
        .unwrap_or(Reply::Status(200));
    match reply {
        Reply::Ok(json) => (StatusCode::OK, axum::Json(json)).into_response(),
        Reply::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("scripted {code}"),
        )
            .into_response(),
        Reply::TooMany(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Reply::Huge => {
            let produced = shared.body_bytes.clone();
            let chunks = futures::stream::iter(0..1024).map(move |_| {
                produced.fetch_add(64 * 1024, Ordering::SeqCst);
                Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 64 * 1024]))
            });
            (StatusCode::OK, axum::body::Body::from_stream(chunks)).into_response()
        }
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, axum::Json(serde_json::json!({"job_id": "late"}))).into_response()
        }
    }
}
