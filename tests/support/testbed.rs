//! `driftwatch-testbed`: the end-to-end tests' servers as one binary, run as Pods in the test cluster
//! (image built by hack/image.sh). Network I/O.
//!
//! ```text
//! driftwatch-testbed qdrant  [--listen 0.0.0.0:6334] [--control 0.0.0.0:8081]
//! driftwatch-testbed webhook [--listen 0.0.0.0:8080] [--script 503,503,503,200]
//! ```
//! `qdrant` is the Qdrant gRPC test server (tests/support/qdrant_server.rs); its control port takes
//! `PUT /delay?ms=N` (answer every call N ms late, to keep a check Job running) and answers `GET /calls`.
//! `webhook` is the scripted retraining receiver (tests/support/webhook_receiver.rs) on `POST /hook`: the
//! n-th request gets the n-th answer of `--script` (the last repeats; `200`, any status code, or `slow:SECS`
//! for a 200 after SECS seconds); `GET /received` lists what arrived (headers and body).

#[path = "qdrant_server.rs"]
mod qdrant_server;
#[path = "webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, put};
use qdrant_server::TestQdrant;
use webhook_receiver::{Receiver, Reply};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    match args.first().map(String::as_str) {
        Some("qdrant") => {
            qdrant(
                &flag("--listen", "0.0.0.0:6334"),
                &flag("--control", "0.0.0.0:8081"),
            )
            .await
        }
        Some("webhook") => webhook(&flag("--listen", "0.0.0.0:8080"), &flag("--script", "200")).await,
        _ => {
            eprintln!(
                "usage: driftwatch-testbed qdrant|webhook [--listen ADDR] [--control ADDR] [--script LIST]"
            );
            std::process::exit(2);
        }
    }
}

async fn qdrant(listen: &str, control: &str) {
    let server = Arc::new(TestQdrant::start_on(listen, None).await);
    eprintln!("qdrant test server on {listen}, control on {control}");
    let app = axum::Router::new()
        .route("/delay", put(set_delay))
        .route(
            "/calls",
            get(|State(s): State<Arc<TestQdrant>>| async move { s.calls().to_string() }),
        )
        .with_state(server);
    serve(control, app).await;
}

async fn set_delay(State(server): State<Arc<TestQdrant>>, Query(q): Query<BTreeMap<String, u64>>) -> String {
    let ms = q.get("ms").copied().unwrap_or(0);
    server.set_delay(Duration::from_millis(ms));
    eprintln!("delay set to {ms} ms");
    format!("delay {ms} ms\n")
}

async fn webhook(listen: &str, script: &str) {
    let script = match parse_script(script) {
        Ok(script) => script,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    eprintln!("webhook receiver on {listen}, script {script:?}");
    let receiver = Arc::new(Receiver::start_on(listen, script).await);
    let app = axum::Router::new()
        .route("/received", get(received))
        .with_state(receiver);
    let control = listen.rsplit_once(':').map(|(host, _)| format!("{host}:8081"));
    serve(control.as_deref().unwrap_or("0.0.0.0:8081"), app).await;
}

fn parse_script(text: &str) -> Result<Vec<Reply>, String> {
    text.split(',')
        .map(|item| match item.trim() {
            "200" => Ok(Reply::Ok(serde_json::json!({"job_id": "retrain-e2e"}))),
            slow if slow.starts_with("slow:") => slow[5..]
                .parse()
                .map(|secs| Reply::Slow(Duration::from_secs(secs)))
                .map_err(|_| format!("bad delay in {slow:?}")),
            code => code
                .parse::<u16>()
                .map(Reply::Status)
                .map_err(|_| format!("bad script entry {code:?}")),
        })
        .collect()
}

async fn received(State(receiver): State<Arc<Receiver>>) -> axum::Json<serde_json::Value> {
    let list: Vec<serde_json::Value> = receiver
        .received()
        .into_iter()
        .map(|r| {
            let headers: BTreeMap<String, String> = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            serde_json::json!({
                "atMs": r.at.as_millis() as u64,
                "headers": headers,
                "body": String::from_utf8_lossy(&r.body),
            })
        })
        .collect();
    axum::Json(serde_json::Value::Array(list))
}

async fn serve(listen: &str, app: axum::Router) {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .expect("bind control port");
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
}
