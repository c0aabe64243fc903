//! `driftwatch qdrant-load` and `driftwatch check` as the controller runs them (the real binary, flags,
//! env, termination log) against the in-memory Qdrant test server: the end-to-end comparison with the
//! drift engine on the same arrays, and the named failures.

#[path = "support/qdrant_server.rs"]
mod qdrant_server;

use std::path::Path;
use std::process::Output;

use driftwatch::api::v1alpha1::SamplingMethod;
use driftwatch::job::result::{CheckReport, MAX_RESULT_BYTES, ScoreReport, parse_check_report};
use ndarray::{Array1, Array2};
use ndarray_npy::WriteNpyExt;
use qdrant_server::{TestPoint, TestQdrant, VectorShape};
use rand::{Rng, SeedableRng};
use serde_json::json;

const AT: &str = "2026-03-10T00:00:00Z";
const COMPARISON_FROM: &str = "2026-03-09T00:00:00Z";
const REFERENCE_FROM: &str = "2026-03-02T00:00:00Z";

fn normal(rng: &mut impl Rng) -> f32 {
    // Box–Muller.
    let (u, v): (f32, f32) = (rng.random::<f32>().max(1e-7), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f32::consts::PI * v).cos()
}

fn data(rows: usize, dim: usize, shift: f32, seed: u64) -> (Array2<f32>, Array1<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((rows, dim), |(_, j)| {
        normal(&mut rng) + if j == 0 { shift } else { 0.0 }
    });
    let c = Array1::from_shape_fn(rows, |_| {
        (0.7 + 0.1 * normal(&mut rng) - shift * 0.1).clamp(0.0, 1.0)
    });
    (x, c)
}

fn write_npy<A: WriteNpyExt>(path: &Path, array: &A) {
    array.write_npy(std::fs::File::create(path).unwrap()).unwrap();
}

async fn driftwatch(args: Vec<String>, env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    command
        .args(args)
        .env_remove("QDRANT_API_KEY")
        .env_remove("QDRANT_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().await.unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn check_args(url: &str, log: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "check",
        "--qdrant-url",
        url,
        "--collection",
        "frames",
        "--reference",
        "7d",
        "--reference-offset",
        "24h",
        "--comparison",
        "24h",
        "--at",
        AT,
        "--check-id",
        "frames-20260310",
        "--output",
        "json",
        "--termination-log",
    ]);
    args.push(log.display().to_string());
    args.extend(strings(extra));
    args
}

/// The document on stdout and in the termination log (they must agree).
fn report(output: &Output, log: &Path) -> CheckReport {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logged = std::fs::read_to_string(log).unwrap();
    assert_eq!(stdout.trim(), logged, "stdout and termination log differ");
    assert!(logged.len() < MAX_RESULT_BYTES, "{} bytes", logged.len());
    parse_check_report(&logged).unwrap()
}

fn same_scores(got: &[ScoreReport], want: &[ScoreReport]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.method, g.source), (w.method, w.source));
        // Equal up to float summation order: the engine's parallel sums (rayon) may split differently
        // between two processes under load, which moves the last bits.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(
            close(g.score, w.score),
            "{} on {}: {} vs {}",
            g.method,
            g.source,
            g.score,
            w.score
        );
        match (g.threshold, w.threshold) {
            (Some(a), Some(b)) => assert!(close(a, b), "{} on {}: threshold", g.method, g.source),
            (a, b) => assert_eq!(a, b, "{} on {}", g.method, g.source),
        }
        assert_eq!(g.p_value, w.p_value, "{} on {}", g.method, g.source);
        assert_eq!(g.drifted, w.drifted, "{} on {}", g.method, g.source);
        assert_eq!((g.n_reference, g.n_comparison), (w.n_reference, w.n_comparison));
    }
}

/// The scores of `driftwatch compute --output json` with these extra flags.
async fn compute(extra: Vec<String>) -> Vec<ScoreReport> {
    let mut args = strings(&["compute", "--output", "json"]);
    args.extend(extra);
    let output = driftwatch(args, &[]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    serde_json::from_value(doc["scores"].clone()).unwrap()
}

#[tokio::test]
async fn the_bundled_example_loaded_with_one_command_checks_like_compute() {
    let server = TestQdrant::start().await;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let load = driftwatch(
        vec![
            "qdrant-load".into(),
            "--qdrant-url".into(),
            server.url.clone(),
            "--collection".into(),
            "frames".into(),
            "--example".into(),
            "--example-dir".into(),
            example.display().to_string(),
            "--to".into(),
            AT.into(),
        ],
        &[],
    )
    .await;
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let reference_rows = driftwatch::npy::NpyArray::read_file(&example.join("reference.npy"))
        .unwrap()
        .shape[0];
    assert_eq!(
        server.payload("frames", 0).unwrap()["timestamp"],
        json!(REFERENCE_FROM)
    );
    assert_eq!(
        server.payload("frames", reference_rows as u64).unwrap()["timestamp"],
        json!(COMPARISON_FROM)
    );

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let output = driftwatch(
        check_args(&server.url, &log, &["--confidence-field", "confidence"]),
        &[],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc = report(&output, &log);
    let result = doc.result.unwrap();
    assert_eq!(doc.check_id, "frames-20260310");
    assert_eq!(result.samples.reference as usize, reference_rows);
    assert_eq!(result.samples.reference_available, Some(reference_rows as i64));
    assert_eq!(
        result.windows.reference.start.as_ref().unwrap().0.to_string(),
        REFERENCE_FROM
    );
    assert_eq!(result.windows.comparison.end.as_ref().unwrap().0.to_string(), AT);
    assert!(result.summary.is_some());
    assert!(
        result
            .scores
            .iter()
            .any(|s| s.source == driftwatch::api::v1alpha1::DataSource::ConfidenceScores)
    );

    // `compute` without files runs the same bundled arrays.
    same_scores(&result.scores, &compute(vec![]).await);

    // The readable report names the verdict and every detector.
    let mut args = check_args(&server.url, &log, &["--confidence-field", "confidence"]);
    let output_at = args.iter().position(|a| a == "--output").unwrap();
    args[output_at + 1] = "text".into();
    let text = driftwatch(args, &[]).await;
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let text = String::from_utf8_lossy(&text.stdout);
    println!("{text}");
    for score in &result.scores {
        assert!(text.contains(score.method.as_str()), "{text}");
    }
}

#[tokio::test]
async fn arrays_loaded_with_a_filter_check_like_compute_on_the_files() {
    let server = TestQdrant::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (reference, _) = data(400, 16, 0.0, 1);
    let (comparison, _) = data(250, 16, 0.8, 2);
    let (noise, _) = data(100, 16, 5.0, 3);
    let path = |name: &str| dir.path().join(format!("{name}.npy")).display().to_string();
    write_npy(Path::new(&path("reference")), &reference);
    write_npy(Path::new(&path("comparison")), &comparison);
    write_npy(Path::new(&path("noise")), &noise);
    // Reference and comparison of model v2, plus other-model points in the comparison day.
    for (file, from, to, model, create) in [
        ("reference", REFERENCE_FROM, COMPARISON_FROM, "v2", true),
        ("noise", COMPARISON_FROM, AT, "v1", false),
        ("comparison", COMPARISON_FROM, AT, "v2", false),
    ] {
        let mut args = strings(&[
            "qdrant-load",
            "--qdrant-url",
            &server.url,
            "--collection",
            "frames",
        ]);
        args.extend(strings(&[
            "--embeddings",
            &path(file),
            "--from",
            from,
            "--to",
            to,
        ]));
        args.extend(strings(&[
            "--payload",
            &format!("{{\"model_version\":\"{model}\"}}"),
        ]));
        if create {
            args.push("--create".into());
        }
        let load = driftwatch(args, &[]).await;
        assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    }
    assert_eq!(server.len("frames"), 750);

    let log = dir.path().join("termination-log");
    let filter = r#"{"must":[{"key":"model_version","match":{"keyword":"v2"}}]}"#;
    let output = driftwatch(check_args(&server.url, &log, &["--filter", filter]), &[]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = report(&output, &log).result.unwrap();
    assert_eq!((result.samples.reference, result.samples.comparison), (400, 250));
    assert!(
        result.drift_detected,
        "a 0.8 shift on one axis should be detected"
    );
    let expected = compute(strings(&[
        "--reference",
        &path("reference"),
        "--comparison",
        &path("comparison"),
    ]))
    .await;
    same_scores(&result.scores, &expected);
}

/// A collection with `reference` points in the reference window and `comparison` in the comparison
/// window, 8-d.
fn staged(server: &TestQdrant, reference: u64, comparison: u64) {
    server.create_collection("frames", VectorShape::Single(8));
    let at: jiff::Timestamp = AT.parse().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut points = Vec::new();
    for i in 0..reference + comparison {
        let age = if i < reference {
            jiff::SignedDuration::from_hours(30 + i as i64 % 100)
        } else {
            jiff::SignedDuration::from_mins(10 + i as i64 % 1_000)
        };
        let v: Vec<f32> = (0..8).map(|_| normal(&mut rng)).collect();
        points.push(TestPoint::new(i, v, json!({"timestamp": (at - age).to_string()})));
    }
    server.insert("frames", points);
}

async fn failed(server_url: &str, extra: &[&str], env: &[(&str, &str)]) -> CheckReport {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let output = driftwatch(check_args(server_url, &log, extra), env).await;
    assert!(!output.status.success(), "the check should fail");
    report(&output, &log)
}

fn kind(report: &CheckReport) -> &str {
    report.error.as_ref().map(|e| e.kind.as_str()).unwrap_or("none")
}

#[tokio::test]
async fn an_empty_comparison_window_is_empty_window() {
    let server = TestQdrant::start().await;
    staged(&server, 200, 0);
    let doc = failed(&server.url, &[], &[]).await;
    assert_eq!(kind(&doc), "EmptyWindow", "{doc:?}");
    assert!(doc.error.unwrap().message.contains("comparison"));
}

#[tokio::test]
async fn too_few_points_is_insufficient_data() {
    let server = TestQdrant::start().await;
    staged(&server, 200, 20);
    let doc = failed(&server.url, &[], &[]).await;
    assert_eq!(kind(&doc), "InsufficientData", "{doc:?}");
}

#[tokio::test]
async fn a_reference_collection_of_another_dimension_is_dimension_mismatch() {
    let server = TestQdrant::start().await;
    staged(&server, 0, 100);
    server.create_collection("training", VectorShape::Single(4));
    server.insert(
        "training",
        (0..100).map(|i| TestPoint::new(i, vec![0.5; 4], json!({}))),
    );
    let mut args = check_args(&server.url, Path::new("/dev/null"), &[]);
    // Whole-collection baseline instead of the relative window.
    let at = args.iter().position(|a| a == "--reference").unwrap();
    args.drain(at..at + 4);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let position = args.iter().position(|a| a == "--termination-log").unwrap();
    args[position + 1] = log.display().to_string();
    args.extend(strings(&["--reference-collection", "training"]));
    let output = driftwatch(args, &[]).await;
    assert!(!output.status.success());
    let doc = report(&output, &log);
    assert_eq!(kind(&doc), "DimensionMismatch", "{doc:?}");
}

#[tokio::test]
async fn a_missing_collection_is_collection_not_found() {
    let server = TestQdrant::start().await;
    let doc = failed(&server.url, &[], &[]).await;
    assert_eq!(kind(&doc), "CollectionNotFound", "{doc:?}");
}

#[tokio::test]
async fn a_wrong_api_key_from_env_is_unauthorized() {
    let server = TestQdrant::start_with_key(Some("right")).await;
    staged(&server, 100, 100);
    let doc = failed(&server.url, &[], &[("QDRANT_API_KEY", "wrong")]).await;
    assert_eq!(kind(&doc), "Unauthorized", "{doc:?}");
    assert!(
        !serde_json::to_string(&doc).unwrap().contains("wrong"),
        "the key must not leak"
    );
}

#[tokio::test]
async fn a_server_that_is_down_is_source_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let doc = failed(&url, &["--timeout", "2s"], &[]).await;
    assert_eq!(kind(&doc), "SourceUnavailable", "{doc:?}");
}

#[tokio::test]
async fn a_bad_flag_value_is_invalid_spec() {
    let server = TestQdrant::start().await;
    let doc = failed(
        &server.url,
        &["--detectors-json", r#"[{"method":"psi","source":"bogus"}]"#],
        &[],
    )
    .await;
    assert_eq!(kind(&doc), "InvalidSpec", "{doc:?}");
}

#[tokio::test]
async fn eight_detectors_fit_the_termination_message() {
    let server = TestQdrant::start().await;
    staged(&server, 300, 200);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let detectors = r#"[
        {"method":"kl_divergence","threshold":0.1,"components":2},
        {"method":"emd","threshold":0.05},
        {"method":"mmd","pValue":0.05,"permutations":50},
        {"method":"ks","pValue":0.05},
        {"method":"classifier","threshold":0.6},
        {"method":"kl_divergence","threshold":"auto","permutations":20},
        {"method":"emd","threshold":"auto","permutations":20},
        {"method":"ks","threshold":0.2,"components":3}
    ]"#;
    let output = driftwatch(
        check_args(&server.url, &log, &["--detectors-json", detectors]),
        &[],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let doc = report(&output, &log);
    assert_eq!(doc.result.as_ref().unwrap().scores.len(), 8);
    let bytes = std::fs::read(&log).unwrap().len();
    assert!(
        doc.result.unwrap().summary.is_some(),
        "the summary should fit: {bytes} bytes"
    );
    println!("result document with 8 detectors: {bytes} bytes");
}

#[tokio::test]
async fn points_without_a_timestamp_are_skipped_and_counted_in_the_result() {
    let server = TestQdrant::start().await;
    staged(&server, 120, 80);
    server.insert(
        "frames",
        (1_000..1_003).map(|i| TestPoint::new(i, vec![0.1; 8], json!({"timestamp": "not a time"}))),
    );
    server.insert("frames", [TestPoint::new(2_000, vec![0.1; 8], json!({}))]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let detectors = r#"[{"method":"emd","threshold":0.05}]"#;
    let output = driftwatch(
        check_args(&server.url, &log, &["--detectors-json", detectors]),
        &[],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let result = report(&output, &log).result.unwrap();
    let skipped = result.skipped.unwrap();
    assert_eq!((skipped.reference, skipped.comparison), (4, 4));
    assert_eq!((result.samples.reference, result.samples.comparison), (120, 80));
}

#[tokio::test]
async fn a_window_beyond_its_limit_is_sampled_as_asked_and_the_result_says_how() {
    let server = TestQdrant::start().await;
    staged(&server, 3_000, 300);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let output = driftwatch(
        check_args(
            &server.url,
            &log,
            &[
                "--max-reference",
                "500",
                "--sampling-mode",
                "random",
                "--strata",
                "4",
            ],
        ),
        &[],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples = report(&output, &log).result.unwrap().samples;
    assert_eq!(
        (samples.reference, samples.reference_available),
        (500, Some(3_000))
    );
    assert_eq!(samples.reference_sampling, Some(SamplingMethod::Random));
    assert_eq!(samples.reference_read, Some(500));
    // The comparison window fits its limit: read whole.
    assert_eq!(samples.comparison_sampling, Some(SamplingMethod::All));
    assert_eq!(samples.comparison_read, Some(300));
    // One random sample per stratum with points: the reference points are 30 to 129 hours old, so the
    // oldest of the four 42-hour strata (150 to 192 hours) is empty and not queried.
    assert_eq!(server.calls_of("query"), 3);
}
