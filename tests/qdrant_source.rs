//! The Qdrant source against the in-memory gRPC test server: windows, filters, sampling, paging and the
//! named failures.

#[path = "support/qdrant_server.rs"]
mod qdrant_server;

use std::time::Duration;

use driftwatch::api::v1alpha1::{FieldCondition, MatchValue, PayloadFilter, TimestampFormat};
use driftwatch::source::qdrant::{QdrantConfig, QdrantSource};
use driftwatch::source::{PointSchema, Sampling, SourceError, TimeRange, WindowQuery};
use qdrant_server::{TestPoint, TestQdrant, VectorShape};
use serde_json::json;

const DAY: i64 = 86_400;

fn t0() -> jiff::Timestamp {
    "2026-03-01T00:00:00Z".parse().unwrap()
}

fn at(seconds: i64) -> jiff::Timestamp {
    t0() + jiff::SignedDuration::from_secs(seconds)
}

fn rfc3339(seconds: i64) -> String {
    at(seconds).to_string()
}

fn vector(id: u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|j| ((id * 31 + j as u64) % 17) as f32 / 17.0)
        .collect()
}

fn schema(format: TimestampFormat) -> PointSchema {
    PointSchema {
        vector_name: None,
        timestamp_field: "timestamp".to_string(),
        timestamp_format: format,
        confidence_field: Some("confidence".to_string()),
        read_points: false,
        payload_fields: Vec::new(),
    }
}

fn source(server: &TestQdrant, schema: PointSchema) -> QdrantSource {
    let mut config = QdrantConfig::new(&server.url);
    config.page_size = Some(7);
    config.backoff = Duration::from_millis(10);
    QdrantSource::new(config, schema).unwrap()
}

fn window(collection: &str, start: i64, end: i64, max: usize) -> WindowQuery {
    WindowQuery {
        collection: collection.to_string(),
        filter: None,
        range: Some(TimeRange {
            start: Some(at(start)),
            end: Some(at(end)),
        }),
        max_points: max,
        seed: 42,
        stream: 1,
        sampling: Sampling::Reservoir,
        strata: 4,
    }
}

/// 100 points, one per hour from t0 (ids 0..100), every 10th from model v2, confidence id/100.
async fn hourly_server() -> TestQdrant {
    let server = TestQdrant::start().await;
    server.create_collection("frames", VectorShape::Single(8));
    server.insert(
        "frames",
        (0..100u64).map(|id| {
            TestPoint::new(
                id,
                vector(id, 8),
                json!({
                    "timestamp": rfc3339(id as i64 * 3_600),
                    "confidence": id as f64 / 100.0,
                    "model_version": if id % 10 == 0 { "v2" } else { "v1" },
                }),
            )
        }),
    );
    server
}

#[tokio::test]
async fn a_datetime_window_is_half_open_and_read_through_all_pages() {
    let server = hourly_server().await;
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    // Hours 24..48: 24 points, over 4 pages of 7.
    let sample = source
        .read_window(&window("frames", DAY, 2 * DAY, 1_000))
        .await
        .unwrap();
    assert_eq!(sample.available, 24);
    assert_eq!(sample.sampled(), 24);
    assert_eq!(sample.scanned, 24);
    assert_eq!(sample.skipped, 0);
    assert_eq!(sample.dimension, 8);
    // Every point is kept, in id order.
    assert_eq!(sample.embeddings.row(0).to_vec(), vector(24, 8));
    assert_eq!(sample.embeddings.row(23).to_vec(), vector(47, 8));
    let scores = sample.scores.unwrap();
    assert_eq!(scores.len(), 24);
    assert!((scores[0] - 0.24).abs() < 1e-6);
}

#[tokio::test]
async fn a_payload_filter_narrows_the_window() {
    let server = hourly_server().await;
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let mut query = window("frames", 0, 100 * 3_600, 1_000);
    query.filter = Some(PayloadFilter {
        must: vec![FieldCondition {
            key: "model_version".into(),
            match_: Some(MatchValue {
                keyword: Some("v2".into()),
                integer: None,
                boolean: None,
                any_keyword: None,
            }),
            range: None,
        }],
        must_not: vec![],
    });
    let sample = source.read_window(&query).await.unwrap();
    assert_eq!(sample.available, 10);
    assert_eq!(sample.sampled(), 10);
}

#[tokio::test]
async fn a_window_larger_than_the_maximum_is_sampled_reproducibly() {
    let server = hourly_server().await;
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let query = window("frames", 0, 100 * 3_600, 30);
    let a = source.read_window(&query).await.unwrap();
    let b = source.read_window(&query).await.unwrap();
    assert_eq!(a.available, 100);
    assert_eq!(a.scanned, 100);
    assert_eq!(a.sampled(), 30);
    assert_eq!(a.embeddings, b.embeddings);
    let mut other = query.clone();
    other.seed = 7;
    assert_ne!(source.read_window(&other).await.unwrap().embeddings, a.embeddings);
}

#[tokio::test]
async fn with_read_points_each_sampled_row_carries_its_id_and_payload_fields() {
    let server = hourly_server().await;
    let mut schema = schema(TimestampFormat::Rfc3339);
    schema.read_points = true;
    schema.payload_fields = vec!["model_version".into(), "no_such_field".into(), "timestamp".into()];
    let source = source(&server, schema);
    // Sampled windows (30 of 100, by the reservoir's replacements or Qdrant's random sample) and a
    // whole window read in strata: the metadata must stay with its row on every path.
    for (sampling, max, rows) in [
        (Sampling::Reservoir, 30, 30),
        (Sampling::Random, 30, 30),
        (Sampling::Reservoir, 500, 100),
    ] {
        let mut query = window("frames", 0, 100 * 3_600, max);
        query.sampling = sampling.clone();
        let sample = source.read_window(&query).await.unwrap();
        assert_eq!(sample.points.len(), rows, "{sampling:?}");
        assert_eq!(sample.embeddings.nrows(), rows, "{sampling:?}");
        for (row, point) in sample.points.iter().enumerate() {
            let id: u64 = point.id.parse().unwrap();
            assert_eq!(
                sample.embeddings.row(row).to_vec(),
                vector(id, 8),
                "{sampling:?} row {row}"
            );
            let version = if id.is_multiple_of(10) { "v2" } else { "v1" };
            assert_eq!(
                point.fields,
                [Some(version.to_string()), None, Some(rfc3339(id as i64 * 3_600))],
                "{sampling:?}"
            );
        }
    }
    // Without read_points nothing is kept.
    let plain = hourly_server().await;
    let sample = self::source(&plain, self::schema(TimestampFormat::Rfc3339))
        .read_window(&window("frames", 0, 100 * 3_600, 30))
        .await
        .unwrap();
    assert!(sample.points.is_empty());
}

#[tokio::test]
async fn fewer_points_than_requested_are_all_kept() {
    let server = hourly_server().await;
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let sample = source
        .read_window(&window("frames", 0, 5 * 3_600, 5_000))
        .await
        .unwrap();
    assert_eq!((sample.available, sample.sampled()), (5, 5));
}

#[tokio::test]
async fn an_empty_window_reads_nothing_and_is_not_an_error_of_the_source() {
    let server = hourly_server().await;
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let sample = source
        .read_window(&window("frames", 30 * DAY, 31 * DAY, 100))
        .await
        .unwrap();
    assert_eq!((sample.available, sample.sampled(), sample.scanned), (0, 0, 0));
    assert_eq!(sample.embeddings.ncols(), 8);
}

#[tokio::test]
async fn points_with_a_missing_or_garbled_timestamp_are_skipped_and_counted() {
    let server = hourly_server().await;
    server.insert(
        "frames",
        [
            TestPoint::new(1_000, vector(1, 8), json!({"confidence": 0.5})),
            TestPoint::new(1_001, vector(2, 8), json!({"timestamp": null})),
            TestPoint::new(1_002, vector(3, 8), json!({"timestamp": "yesterday"})),
        ],
    );
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let sample = source
        .read_window(&window("frames", 0, DAY, 1_000))
        .await
        .unwrap();
    assert_eq!(sample.available, 24);
    assert_eq!(sample.skipped, 3);
}

#[tokio::test]
async fn a_collection_without_readable_timestamps_is_missing_timestamp() {
    let server = hourly_server().await;
    // The timestamps are RFC 3339 text; reading them as unix seconds finds none.
    let source = source(&server, schema(TimestampFormat::UnixSeconds));
    let err = source
        .read_window(&window("frames", 0, DAY, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::MissingTimestamp { points: 100, .. }),
        "{err}"
    );
    assert_eq!(err.kind(), "MissingTimestamp");
}

#[tokio::test]
async fn unix_second_and_millisecond_timestamps_are_numeric_ranges() {
    let server = TestQdrant::start().await;
    server.create_collection("s", VectorShape::Single(4));
    server.create_collection("ms", VectorShape::Single(4));
    for id in 0..48u64 {
        let t = at(id as i64 * 3_600);
        server.insert(
            "s",
            [TestPoint::new(
                id,
                vector(id, 4),
                json!({"timestamp": t.as_second()}),
            )],
        );
        server.insert(
            "ms",
            [TestPoint::new(
                id,
                vector(id, 4),
                json!({"timestamp": t.as_millisecond()}),
            )],
        );
    }
    let seconds = source(&server, schema(TimestampFormat::UnixSeconds));
    assert_eq!(
        seconds
            .read_window(&window("s", 0, DAY, 100))
            .await
            .unwrap()
            .available,
        24
    );
    let millis = source(&server, schema(TimestampFormat::UnixMillis));
    assert_eq!(
        millis
            .read_window(&window("ms", DAY, 2 * DAY, 100))
            .await
            .unwrap()
            .available,
        24
    );
}

#[tokio::test]
async fn a_named_vector_is_read_and_an_unknown_name_is_invalid_spec() {
    let server = TestQdrant::start().await;
    server.create_collection(
        "multi",
        VectorShape::Named(vec![("image".into(), 4), ("text".into(), 6)]),
    );
    server.insert(
        "multi",
        (0..10u64).map(|id| {
            let mut p = TestPoint::named(id, "image", vector(id, 4), json!({"timestamp": rfc3339(0)}));
            p.vectors.insert("text".into(), vector(id, 6));
            p
        }),
    );
    let mut s = schema(TimestampFormat::Rfc3339);
    s.vector_name = Some("text".into());
    let sample = source(&server, s.clone())
        .read_window(&window("multi", 0, DAY, 100))
        .await
        .unwrap();
    assert_eq!(sample.embeddings.dim(), (10, 6));
    s.vector_name = Some("audio".into());
    let err = source(&server, s)
        .read_window(&window("multi", 0, DAY, 100))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "InvalidSpec", "{err}");
}

#[tokio::test]
async fn a_whole_collection_reads_points_without_a_timestamp_too() {
    let server = hourly_server().await;
    server.insert("frames", [TestPoint::new(1_000, vector(1, 8), json!({}))]);
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let mut query = window("frames", 0, 0, 1_000);
    query.range = None;
    let sample = source.read_window(&query).await.unwrap();
    assert_eq!(
        (sample.available, sample.sampled(), sample.skipped),
        (101, 101, 0)
    );
}

#[tokio::test]
async fn a_missing_collection_is_collection_not_found() {
    let server = hourly_server().await;
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let err = source.read_window(&window("nope", 0, DAY, 10)).await.unwrap_err();
    assert_eq!(err.kind(), "CollectionNotFound", "{err}");
}

#[tokio::test]
async fn a_wrong_or_missing_api_key_is_unauthorized() {
    let server = TestQdrant::start_with_key(Some("s3cret")).await;
    server.create_collection("frames", VectorShape::Single(4));
    for key in [None, Some("wrong".to_string())] {
        let mut config = QdrantConfig::new(&server.url);
        config.api_key = key;
        let source = QdrantSource::new(config, schema(TimestampFormat::Rfc3339)).unwrap();
        let err = source
            .read_window(&window("frames", 0, DAY, 10))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "Unauthorized", "{err}");
    }
    let mut config = QdrantConfig::new(&server.url);
    config.api_key = Some("s3cret".into());
    let source = QdrantSource::new(config, schema(TimestampFormat::Rfc3339)).unwrap();
    assert_eq!(
        source
            .read_window(&window("frames", 0, DAY, 10))
            .await
            .unwrap()
            .available,
        0
    );
}

#[tokio::test]
async fn a_server_that_is_down_is_source_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = QdrantConfig::new(url);
    config.retries = 1;
    config.backoff = Duration::from_millis(10);
    config.timeout = Duration::from_secs(2);
    let source = QdrantSource::new(config, schema(TimestampFormat::Rfc3339)).unwrap();
    let err = source
        .read_window(&window("frames", 0, DAY, 10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "SourceUnavailable", "{err}");
}

#[tokio::test]
async fn a_slow_server_times_out_as_source_unavailable() {
    let server = hourly_server().await;
    server.set_delay(Duration::from_secs(3));
    let mut config = QdrantConfig::new(&server.url);
    config.timeout = Duration::from_millis(200);
    config.retries = 1;
    config.backoff = Duration::from_millis(10);
    let source = QdrantSource::new(config, schema(TimestampFormat::Rfc3339)).unwrap();
    let err = source
        .read_window(&window("frames", 0, DAY, 10))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Timeout { attempts: 2, .. }), "{err}");
    assert_eq!(err.kind(), "SourceUnavailable");
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let server = hourly_server().await;
    server.fail_next(2);
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let sample = source.read_window(&window("frames", 0, DAY, 100)).await.unwrap();
    assert_eq!(sample.available, 24);
}

#[tokio::test]
async fn a_nan_vector_is_invalid_vector() {
    let server = hourly_server().await;
    let mut bad = vector(5, 8);
    bad[3] = f32::NAN;
    server.insert(
        "frames",
        [TestPoint::new(5, bad, json!({"timestamp": rfc3339(5 * 3_600)}))],
    );
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let err = source
        .read_window(&window("frames", 0, DAY, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::InvalidVector { point, .. } if point == "5"),
        "{err}"
    );
}

#[tokio::test]
async fn a_vector_of_the_wrong_dimension_is_dimension_mismatch() {
    let server = hourly_server().await;
    server.insert(
        "frames",
        [TestPoint::new(
            7,
            vector(7, 5),
            json!({"timestamp": rfc3339(7 * 3_600)}),
        )],
    );
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let err = source
        .read_window(&window("frames", 0, DAY, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::DimensionMismatch {
                expected: 8,
                found: 5,
                ..
            }
        ),
        "{err}"
    );
}

#[derive(clap::Parser)]
struct LoadCli {
    #[command(flatten)]
    args: driftwatch::job::load::LoadArgs,
}

#[tokio::test]
async fn loading_keeps_vectors_exact_and_a_cosine_collection_normalizes_them_like_qdrant() {
    use clap::Parser;
    let server = TestQdrant::start().await;
    let rows = driftwatch::job::load::Rows {
        vectors: ndarray::Array2::from_shape_fn((60, 3), |(i, j)| (i + j) as f32 + 1.0),
        timestamps: Some((0..60).map(|i| (at(0).as_second() + i * 60) as f64).collect()),
        confidence: None,
        payloads: None,
    };
    for (collection, distance) in [("raw", "euclid"), ("unit", "cosine")] {
        let cli = LoadCli::try_parse_from([
            "load",
            "--qdrant-url",
            &server.url,
            "--collection",
            collection,
            "--create",
            "--distance",
            distance,
            "--embeddings",
            "unused.npy",
            "--batch-size",
            "25",
        ])
        .unwrap();
        assert_eq!(
            driftwatch::job::load::upsert_rows(&cli.args, &rows)
                .await
                .unwrap(),
            60
        );
    }
    let source = source(&server, schema(TimestampFormat::Rfc3339));
    let raw = source.read_window(&window("raw", 0, DAY, 100)).await.unwrap();
    assert_eq!(raw.embeddings, rows.vectors);
    let unit = source.read_window(&window("unit", 0, DAY, 100)).await.unwrap();
    let norm: f32 = unit.embeddings.row(5).iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}
