//! `driftwatch package` end to end as a process: Qdrant (the gRPC test server) → archive → S3 (moto) →
//! webhook (axum receiver); the result document on stdout and in the termination log; exit codes.

#[path = "support/qdrant_server.rs"]
mod qdrant_server;
#[path = "support/s3_server.rs"]
mod s3_server;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::io::Read;
use std::process::Command;

use driftwatch::job::result::{PackageOutcome, parse_package_report};
use driftwatch::source::sampling::sample_key_of_id;
use qdrant_server::{TestPoint, TestQdrant, VectorShape};
use s3_server::S3Server;
use serde_json::{Value, json};
use webhook_receiver::{Receiver, Reply};

const BUCKET: &str = "cli-batches";

/// 200 points: 120 inside the comparison window (2026-11-25), 60 before it, 20 of another model.
fn load(qdrant: &TestQdrant) {
    qdrant.create_collection("frames", VectorShape::Single(8));
    qdrant.insert(
        "frames",
        (0..200u64).map(|i| {
            let day = if i < 140 { 25 } else { 24 };
            let model = if i % 10 == 3 { "v1" } else { "v2" };
            TestPoint::new(
                i,
                (0..8).map(|d| (i * 8 + d) as f32).collect(),
                json!({
                    "timestamp": format!("2026-11-{day}T{:02}:00:00Z", i % 24),
                    "model_version": model,
                    "frame_uri": format!("s3://nowhere/{i}.jpg"),
                    "sample_key": sample_key_of_id(i),
                }),
            )
        }),
    );
}

fn package(qdrant_url: &str, webhook: &str, event: &str, termination_log: &std::path::Path) -> Command {
    let server = S3Server::shared();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    cmd.arg("package")
        .args(["--qdrant-url", qdrant_url, "--collection", "frames"])
        .args([
            "--comparison-start",
            "2026-11-25T00:00:00Z",
            "--comparison-end",
            "2026-11-26T00:00:00Z",
        ])
        .args([
            "--reference-start",
            "2026-11-18T00:00:00Z",
            "--reference-end",
            "2026-11-25T00:00:00Z",
        ])
        .args([
            "--filter",
            r#"{"must":[{"key":"model_version","match":{"keyword":"v2"}}]}"#,
        ])
        .args(["--sample-size", "50", "--seed", "7"])
        .args([
            "--namespace",
            "ml",
            "--event",
            event,
            "--event-uid",
            "0a1b-uid",
            "--monitor",
            "frames",
        ])
        .args([
            "--scores-json",
            r#"[{"method":"kl_divergence","source":"embeddings","score":0.4,"drifted":true}]"#,
        ])
        .args([
            "--approved-by",
            "alice",
            "--reason",
            "firmware",
            "--created-at",
            "2026-11-26T08:00:00Z",
        ])
        .args(["--bucket", BUCKET, "--prefix", "batches/"])
        .args(["--webhook-backoff", "50ms", "--output", "json"])
        .arg("--termination-log")
        .arg(termination_log)
        .env("DRIFTWATCH_WEBHOOK_URL", webhook)
        .env("DRIFTWATCH_WEBHOOK_HMAC_KEY", "key")
        .env_remove("AWS_PROFILE");
    for (k, v) in server.env() {
        cmd.env(k, v);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_packages_the_filtered_comparison_window_from_qdrant() {
    let qdrant = TestQdrant::start().await;
    load(&qdrant);
    S3Server::shared().create_bucket(BUCKET).await;
    let receiver = Receiver::start(vec![Reply::Status(502), Reply::Ok(json!({"job_id": "rt-9"}))]).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let url = qdrant.url.clone();
    let webhook = receiver.url.clone();
    let log2 = log.clone();
    let out = tokio::task::spawn_blocking(move || package(&url, &webhook, "frames-e2e", &log2).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report = parse_package_report(stdout.trim()).unwrap();
    assert_eq!(
        report,
        parse_package_report(&std::fs::read_to_string(&log).unwrap()).unwrap()
    );
    assert!(std::fs::read(&log).unwrap().len() < 4096);
    let result = report.result.unwrap();
    // 140 points on the 25th, of which 14 are model v1: 126 in the filtered window, 50 sampled.
    assert_eq!(result.points, 50);
    assert_eq!(result.points_available, Some(126));
    assert_eq!(result.attempts, 2);
    assert_eq!(result.retraining_job_id.as_deref(), Some("rt-9"));
    assert_eq!(
        result.s3_uri.as_deref(),
        Some("s3://cli-batches/batches/ml/frames-e2e/batch.tar.gz")
    );

    // The archive holds exactly Qdrant's points (ids, payloads, vectors) of the window.
    let bytes = S3Server::shared()
        .object(BUCKET, "batches/ml/frames-e2e/batch.tar.gz")
        .await;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut points = String::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("points.jsonl") {
            entry.read_to_string(&mut points).unwrap();
        }
    }
    let lines: Vec<Value> = points.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 50);
    for line in &lines {
        let id = line["id"].as_u64().unwrap();
        assert!(
            id < 140 && id % 10 != 3,
            "point {id} is outside the window or filter"
        );
        assert_eq!(line["payload"]["model_version"], "v2");
        let expected: Vec<f64> = (0..8).map(|d| (id * 8 + d) as f64).collect();
        let vector: Vec<f64> = line["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(vector, expected);
        assert!(line["timestamp"].as_str().unwrap().starts_with("2026-11-25T"));
    }

    // A retried Pod (same arguments) reuses the upload.
    let url = qdrant.url.clone();
    let webhook = receiver.url.clone();
    let log3 = dir.path().join("second");
    let again = tokio::task::spawn_blocking(move || package(&url, &webhook, "frames-e2e", &log3).output())
        .await
        .unwrap()
        .unwrap();
    assert!(again.status.success());
    let second = parse_package_report(String::from_utf8(again.stdout).unwrap().trim())
        .unwrap()
        .result
        .unwrap();
    assert!(second.reused);
    assert_eq!(second.sha256, result.sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_webhook_fails_the_job_with_a_result_document() {
    let qdrant = TestQdrant::start().await;
    load(&qdrant);
    S3Server::shared().create_bucket(BUCKET).await;
    let receiver = Receiver::start(vec![Reply::Status(400)]).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let (url, webhook, log2) = (qdrant.url.clone(), receiver.url.clone(), log.clone());
    let out = tokio::task::spawn_blocking(move || package(&url, &webhook, "frames-400", &log2).output())
        .await
        .unwrap()
        .unwrap();
    // Exit code 3: final, the packaging Job's podFailurePolicy fails the Job instead of rerunning the Pod.
    assert_eq!(
        out.status.code(),
        Some(i32::from(driftwatch::job::package::FINAL_FAILURE_EXIT_CODE))
    );
    let report = parse_package_report(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let error = report.error.unwrap();
    assert_eq!(error.kind, "WebhookRejected");
    assert!(error.message.contains("HTTP 400"), "{}", error.message);
    let partial = report.partial.unwrap();
    assert_eq!(partial.attempts, 1);
    assert!(partial.s3_uri.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_qdrant_is_reported_as_source_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let log2 = log.clone();
    let out = tokio::task::spawn_blocking(move || {
        package(
            &format!("http://127.0.0.1:{port}"),
            "http://127.0.0.1:9/hook",
            "frames-down",
            &log2,
        )
        .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let report = parse_package_report(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(report.error.unwrap().kind, "SourceUnavailable");
}

/// The files of an uploaded archive.
async fn archive_files(key: &str) -> std::collections::HashMap<String, Vec<u8>> {
    let bytes = S3Server::shared().object(BUCKET, key).await;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut files = std::collections::HashMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(name, content);
    }
    files
}

/// Runs the Job with extra flags and returns its outcome.
async fn package_with(
    qdrant: &TestQdrant,
    receiver: &Receiver,
    event: &str,
    extra: &[&str],
) -> PackageOutcome {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let (url, webhook, event) = (qdrant.url.clone(), receiver.url.clone(), event.to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || package(&url, &webhook, &event, &log).args(extra).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_package_report(String::from_utf8(out.stdout).unwrap().trim())
        .unwrap()
        .result
        .unwrap()
}

fn packaged_ids(files: &std::collections::HashMap<String, Vec<u8>>) -> Vec<u64> {
    String::from_utf8(files["points.jsonl"].clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_key_sampling_reads_about_the_sample_and_a_retry_rebuilds_the_identical_archive() {
    let qdrant = TestQdrant::start().await;
    load(&qdrant);
    S3Server::shared().create_bucket(BUCKET).await;
    let receiver = Receiver::start(vec![Reply::Ok(json!({"job_id": "rt-1"}))]).await;
    let keyed = [
        "--sampling-mode",
        "sampleKey",
        "--sample-key-field",
        "sample_key",
        "--strata",
        "4",
    ];
    let first = package_with(&qdrant, &receiver, "frames-keyed", &keyed).await;
    assert_eq!((first.points, first.points_available), (50, Some(126)));
    let files = archive_files("batches/ml/frames-keyed/batch.tar.gz").await;
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["sampling"]["method"], "sample-key-bottom-k-stratified");
    let read = manifest["sampling"]["pointsRead"].as_u64().unwrap();
    assert!((50..126).contains(&read), "read {read} ids of 126 for 50");
    let ids = packaged_ids(&files);
    assert_eq!(ids.len(), 50);
    assert!(ids.iter().all(|&id| id < 140 && id % 10 != 3), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by id");

    // A retried Pod draws the same sample, rebuilds the same bytes and reuses the upload.
    let second = package_with(&qdrant, &receiver, "frames-keyed", &keyed).await;
    assert!(second.reused);
    assert_eq!(second.sha256, first.sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sampling_draws_afresh_on_retry_and_s3_holds_the_archive_the_webhook_names() {
    let qdrant = TestQdrant::start().await;
    load(&qdrant);
    S3Server::shared().create_bucket(BUCKET).await;
    let receiver = Receiver::start(vec![Reply::Ok(json!({"job_id": "rt-2"}))]).await;
    let random = ["--sampling-mode", "random"];
    let first = package_with(&qdrant, &receiver, "frames-random", &random).await;
    assert_eq!((first.points, first.points_available), (50, Some(126)));
    let files = archive_files("batches/ml/frames-random/batch.tar.gz").await;
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["sampling"]["method"], "qdrant-random-stratified");
    assert_eq!(manifest["sampling"]["pointsRead"], 50);
    assert!(packaged_ids(&files).iter().all(|&id| id < 140 && id % 10 != 3));

    // A retried Pod draws another sample: a new archive replaces the first, and the webhook is told
    // the checksum of the one in S3.
    let second = package_with(&qdrant, &receiver, "frames-random", &random).await;
    assert!(!second.reused);
    assert_ne!(second.sha256, first.sha256);
    let in_s3 = archive_files("batches/ml/frames-random/batch.tar.gz").await;
    assert_ne!(packaged_ids(&in_s3), packaged_ids(&files));
    let bodies = receiver.received();
    let last: Value = serde_json::from_slice(&bodies.last().unwrap().body).unwrap();
    assert_eq!(last["sha256"].as_str(), second.sha256.as_deref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_answering_a_huge_job_id_still_ends_in_a_readable_success_document() {
    let qdrant = TestQdrant::start().await;
    load(&qdrant);
    S3Server::shared().create_bucket(BUCKET).await;
    let receiver = Receiver::start(vec![Reply::Ok(json!({"job_id": "j".repeat(10_000)}))]).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let (url, webhook, log2) = (qdrant.url.clone(), receiver.url.clone(), log.clone());
    let out = tokio::task::spawn_blocking(move || package(&url, &webhook, "frames-long-id", &log2).output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.len() <= 4096,
        "{} bytes: Kubernetes would cut it",
        text.len()
    );
    let result = parse_package_report(&text).unwrap().result.unwrap();
    assert_eq!(result.attempts, 1);
    assert_eq!(result.retraining_job_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_webhook_url_reaches_neither_the_result_nor_the_log() {
    let qdrant = TestQdrant::start().await;
    load(&qdrant);
    S3Server::shared().create_bucket(BUCKET).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let webhook = format!("http://127.0.0.1:{port}/hooks/driftwatch?token=SECRET-IN-URL");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let (url, log2) = (qdrant.url.clone(), log.clone());
    let out = tokio::task::spawn_blocking(move || package(&url, &webhook, "frames-token", &log2).output())
        .await
        .unwrap()
        .unwrap();
    // WebhookFailed is a final failure (exit code 3: the Pod is not run again).
    assert_eq!(out.status.code(), Some(3));
    let text = std::fs::read_to_string(&log).unwrap();
    let error = parse_package_report(&text).unwrap().error.unwrap();
    assert_eq!(error.kind, "WebhookFailed");
    assert!(
        error.message.contains(&format!("http://127.0.0.1:{port}")),
        "{}",
        error.message
    );
    for (what, output) in [
        ("termination log", text.into_bytes()),
        ("stdout", out.stdout),
        ("stderr", out.stderr),
    ] {
        let output = String::from_utf8_lossy(&output);
        assert!(!output.contains("SECRET-IN-URL"), "{what}: {output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_urls_outside_the_allow_list_are_never_requested() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A media server on loopback that counts what it is asked for.
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/frames/{name}",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                vec![1u8; 32]
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let qdrant = TestQdrant::start().await;
    qdrant.create_collection("frames", VectorShape::Single(8));
    qdrant.insert(
        "frames",
        (0..20u64).map(|i| {
            TestPoint::new(
                i,
                (0..8).map(|d| (i * 8 + d) as f32).collect(),
                json!({
                    "timestamp": format!("2026-11-25T{:02}:00:00Z", i % 24),
                    "model_version": "v2",
                    "frame_uri": format!("http://127.0.0.1:{port}/frames/{i}.jpg"),
                }),
            )
        }),
    );
    S3Server::shared().create_bucket(BUCKET).await;
    let receiver = Receiver::start(vec![Reply::Ok(json!({"job_id": "rt-1"}))]).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |event: &'static str, extra: Vec<String>| {
        let (url, webhook, log) = (qdrant.url.clone(), receiver.url.clone(), dir.path().join(event));
        tokio::task::spawn_blocking(move || {
            let out = package(&url, &webhook, event, &log)
                .args(["--include-objects-field", "frame_uri"])
                .args(extra)
                .output()
                .unwrap();
            (out, std::fs::read_to_string(&log).unwrap_or_default())
        })
    };
    // No allow-list: no http(s) object is fetched.
    let (out, log) = run("frames-ssrf", vec![]).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = parse_package_report(&log).unwrap();
    assert_eq!(report.error.unwrap().kind, "ObjectsUnavailable");
    // Allowed host, but a loopback address: still refused.
    let allowed = format!("127.0.0.1:{port}");
    let (_, log) = run(
        "frames-ssrf-2",
        vec!["--allow-object-source".into(), allowed.clone()],
    )
    .await
    .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        parse_package_report(&log).unwrap().error.unwrap().kind,
        "ObjectsUnavailable"
    );
    // Allowed explicitly, private addresses included: fetched.
    let (out, log) = run(
        "frames-ssrf-3",
        vec![
            "--allow-object-source".into(),
            allowed,
            "--allow-private-object-addresses".into(),
            "true".into(),
        ],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let objects = parse_package_report(&log)
        .unwrap()
        .result
        .unwrap()
        .objects
        .unwrap();
    assert_eq!(objects.included, 20);
    assert_eq!(hits.load(Ordering::SeqCst), 20);
}
