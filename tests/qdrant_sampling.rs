//! Sampled windows against the gRPC test server: the server's random sample first (Qdrant's semantics),
//! then the source's modes — random, sample key, reservoir, whole — what they read, their reproducibility,
//! and the uniformity of their samples (chi-square over time bins and over ids).
//!
//! The uniformity tests of the random mode are statistical: each asserts p > 1e-4 for a test that holds,
//! so one run fails by chance with probability below 1e-4 per assertion. Sample-key and reservoir samples
//! are fixed by the data and the seed: their p-values are the same on every run.

#[path = "support/chi_square.rs"]
mod chi_square;
#[path = "support/qdrant_server.rs"]
mod qdrant_server;

use std::collections::HashSet;

use driftwatch::api::v1alpha1::{SamplingMethod, TimestampFormat};
use driftwatch::source::qdrant::{QdrantConfig, QdrantSource};
use driftwatch::source::sampling::sample_key_of_id;
use driftwatch::source::{PointSchema, Sampling, SourceError, TimeRange, WindowQuery, WindowSample};
use qdrant_client::Qdrant;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorSel;
use qdrant_client::qdrant::{
    Condition, Filter, Query, QueryPoints, Range, Sample, VectorsSelector, WithVectorsSelector,
    point_id::PointIdOptions, vectors_output::VectorsOptions,
};
use qdrant_server::{TestPoint, TestQdrant, VectorShape};
use serde_json::json;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const DAY: i64 = 86_400;

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(T0 + seconds).unwrap()
}

/// A point whose vector starts with its id, timestamped `seconds` after T0, with a sample key.
fn point(id: u64, seconds: i64) -> TestPoint {
    TestPoint::new(
        id,
        vec![id as f32, (id % 7) as f32, 1.0, -1.0],
        json!({
            "timestamp": T0 + seconds,
            "confidence": (id % 100) as f64 / 100.0,
            "sample_key": sample_key_of_id(id),
        }),
    )
}

fn schema() -> PointSchema {
    PointSchema {
        vector_name: None,
        timestamp_field: "timestamp".into(),
        timestamp_format: TimestampFormat::UnixSeconds,
        confidence_field: Some("confidence".into()),
        read_points: false,
        payload_fields: Vec::new(),
    }
}

fn source(server: &TestQdrant) -> QdrantSource {
    let mut config = QdrantConfig::new(&server.url);
    config.page_size = Some(500);
    QdrantSource::new(config, schema()).unwrap()
}

fn window(start: i64, end: i64, max: usize, sampling: Sampling, strata: usize) -> WindowQuery {
    WindowQuery {
        collection: "frames".into(),
        filter: None,
        range: Some(TimeRange {
            start: Some(at(start)),
            end: Some(at(end)),
        }),
        max_points: max,
        seed: 42,
        stream: 1,
        sampling,
        strata,
    }
}

fn keyed() -> Sampling {
    Sampling::SampleKey {
        field: "sample_key".into(),
    }
}

/// The ids of a sample (the first vector component).
fn ids(sample: &WindowSample) -> Vec<u64> {
    sample.embeddings.column(0).iter().map(|&v| v as u64).collect()
}

/// `n` points over 8 days, arriving faster and faster: point `i` at 8 days × (i / n)².
fn accelerating(n: u64) -> impl Fn(u64) -> i64 {
    move |i| {
        let x = i as f64 / n as f64;
        (8.0 * DAY as f64 * x * x) as i64
    }
}

async fn server_with(n: u64, time: impl Fn(u64) -> i64) -> TestQdrant {
    let server = TestQdrant::start().await;
    server.create_collection("frames", VectorShape::Single(4));
    server.insert("frames", (0..n).map(|i| point(i, time(i))));
    server
}

fn raw_client(server: &TestQdrant) -> Qdrant {
    Qdrant::from_url(&server.url)
        .skip_compatibility_check()
        .build()
        .unwrap()
}

fn sample_query(filter: Filter, limit: Option<u64>) -> QueryPoints {
    QueryPoints {
        collection_name: "frames".into(),
        query: Some(Query::new_sample(Sample::Random)),
        filter: Some(filter),
        limit,
        ..Default::default()
    }
}

fn num(id: Option<&qdrant_client::qdrant::PointId>) -> u64 {
    match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(PointIdOptions::Num(n)) => *n,
        other => panic!("not a numeric id: {other:?}"),
    }
}

fn time_filter(from: i64, to: i64) -> Filter {
    Filter::must([Condition::range(
        "timestamp",
        Range {
            gte: Some((T0 + from) as f64),
            lt: Some((T0 + to) as f64),
            ..Default::default()
        },
    )])
}

// --- the test server speaks Qdrant's random sample -------------------------------------------------------

#[tokio::test]
async fn the_servers_random_sample_draws_limit_distinct_points_after_the_filter() {
    let server = server_with(1_000, |i| i as i64).await;
    let client = raw_client(&server);
    // Ids 200..500 match the filter.
    let a = client
        .query(sample_query(time_filter(200, 500), Some(50)))
        .await
        .unwrap();
    let a: Vec<u64> = a.result.iter().map(|p| num(p.id.as_ref())).collect();
    assert_eq!(a.len(), 50);
    assert_eq!(a.iter().collect::<HashSet<_>>().len(), 50);
    assert!(a.iter().all(|id| (200..500).contains(id)), "{a:?}");
    // A limit above the matching points returns them all; no limit means 10.
    let all = client
        .query(sample_query(time_filter(200, 500), Some(5_000)))
        .await
        .unwrap();
    assert_eq!(all.result.len(), 300);
    assert!(all.result.iter().all(|p| p.score == 1.0));
    let ten = client
        .query(sample_query(time_filter(200, 500), None))
        .await
        .unwrap();
    assert_eq!(ten.result.len(), 10);
    // Another draw, another sample.
    let b = client
        .query(sample_query(time_filter(200, 500), Some(50)))
        .await
        .unwrap();
    let b: HashSet<u64> = b.result.iter().map(|p| num(p.id.as_ref())).collect();
    assert_ne!(a.iter().copied().collect::<HashSet<_>>(), b);
    // A zero limit is a validation error, as in Qdrant.
    let err = client
        .query(sample_query(time_filter(200, 500), Some(0)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

#[tokio::test]
async fn a_sampled_point_without_the_selected_named_vector_comes_back_without_it() {
    let server = TestQdrant::start().await;
    server.create_collection(
        "frames",
        VectorShape::Named(vec![("image".into(), 2), ("text".into(), 3)]),
    );
    server.insert(
        "frames",
        (0..40u64).map(|id| {
            let mut p = TestPoint::named(id, "image", vec![id as f32; 2], json!({"timestamp": T0}));
            if id < 20 {
                p.vectors.insert("text".into(), vec![id as f32; 3]);
            }
            p
        }),
    );
    let client = raw_client(&server);
    let mut request = sample_query(Filter::default(), Some(40));
    request.with_vectors = Some(WithVectorsSelector {
        selector_options: Some(VectorSel::Include(VectorsSelector {
            names: vec!["text".into()],
        })),
    });
    let response = client.query(request).await.unwrap();
    assert_eq!(
        response.result.len(),
        40,
        "points without the vector are sampled too"
    );
    for p in &response.result {
        let Some(VectorsOptions::Vectors(named)) =
            p.vectors.as_ref().and_then(|v| v.vectors_options.as_ref())
        else {
            panic!("named vectors expected");
        };
        assert_eq!(named.vectors.contains_key("text"), num(p.id.as_ref()) < 20);
        assert!(!named.vectors.contains_key("image"));
    }
}

#[tokio::test]
async fn the_servers_segments_are_weighted_by_their_size_not_by_their_matching_points() {
    // Qdrant's local shard picks segments with weights proportional to their point counts. Two segments,
    // 1500 and 500 points, with 300 matching points each: about 3/4 of the sample comes from the first.
    let server = TestQdrant::start().await;
    server.set_segment_points(1_500);
    server.create_collection("frames", VectorShape::Single(4));
    server.insert(
        "frames",
        (0..2_000u64).map(|i| {
            let matching = if i < 1_500 {
                i % 5 == 0
            } else {
                i % 5 != 4 && i < 1_875
            };
            point(i, if matching { 0 } else { DAY })
        }),
    );
    let client = raw_client(&server);
    let response = client
        .query(sample_query(time_filter(0, 1), Some(200)))
        .await
        .unwrap();
    let first = response
        .result
        .iter()
        .filter(|p| num(p.id.as_ref()) < 1_500)
        .count();
    assert_eq!(response.result.len(), 200);
    assert!(
        (120..=180).contains(&first),
        "{first} of 200 from the first segment"
    );
}

// --- the source's modes ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_large_window_sampled_at_random_reads_only_about_the_sample() {
    let server = server_with(20_000, accelerating(20_000)).await;
    let sample = source(&server)
        .read_window(&window(0, 8 * DAY, 1_000, Sampling::Random, 8))
        .await
        .unwrap();
    assert_eq!(sample.available, 20_000);
    assert_eq!(sample.sampled(), 1_000);
    assert_eq!(sample.scanned, 1_000);
    assert_eq!(sample.method, SamplingMethod::Random);
    assert_eq!(ids(&sample).iter().collect::<HashSet<_>>().len(), 1_000);
    assert_eq!(server.calls_of("scroll"), 0);
    assert_eq!(server.calls_of("query"), 8, "one random sample per stratum");
    assert_eq!(sample.scores.unwrap().len(), 1_000);
}

#[tokio::test]
async fn a_sample_key_window_is_reproducible_follows_the_seed_and_reads_about_the_sample() {
    let server = server_with(20_000, accelerating(20_000)).await;
    let source = source(&server);
    let query = window(0, 8 * DAY, 1_000, keyed(), 8);
    let a = source.read_window(&query).await.unwrap();
    let b = source.read_window(&query).await.unwrap();
    assert_eq!(a.method, SamplingMethod::SampleKey);
    assert_eq!(a.sampled(), 1_000);
    assert_eq!(
        a.embeddings, b.embeddings,
        "same data and seed, same sample in the same order"
    );
    assert!(
        a.scanned >= 1_000 && a.scanned < 1_500,
        "read {} points for a sample of 1000",
        a.scanned
    );
    let mut other = query.clone();
    other.seed = 7;
    let c = source.read_window(&other).await.unwrap();
    let overlap = ids(&a).iter().filter(|id| ids(&c).contains(id)).count();
    // Two independent 5 % samples share about 5 % of their points.
    assert!(overlap < 150, "{overlap} points shared by two seeds");
}

#[tokio::test]
async fn a_sample_key_window_is_the_same_set_whatever_the_page_size_and_concurrency() {
    let server = server_with(6_000, |i| i as i64 * 60).await;
    let query = window(0, 6_000 * 60, 700, keyed(), 5);
    let mut config = QdrantConfig::new(&server.url);
    config.page_size = Some(16);
    config.concurrency = 1;
    let small = QdrantSource::new(config, schema())
        .unwrap()
        .read_window(&query)
        .await
        .unwrap();
    let large = source(&server).read_window(&query).await.unwrap();
    assert_eq!(small.embeddings, large.embeddings);
}

#[tokio::test]
async fn a_sample_key_window_with_unkeyed_points_falls_back_to_the_reservoir() {
    let server = server_with(3_000, |i| i as i64).await;
    server.insert(
        "frames",
        [TestPoint::new(9_999, vec![0.0; 4], json!({"timestamp": T0 + 5}))],
    );
    let sample = source(&server)
        .read_window(&window(0, 3_000, 100, keyed(), 4))
        .await
        .unwrap();
    assert_eq!(sample.method, SamplingMethod::Reservoir);
    assert_eq!(sample.scanned, 3_001);
    assert_eq!(sample.sampled(), 100);
}

#[tokio::test]
async fn a_window_within_its_limit_is_read_whole_stratum_by_stratum_in_time_order() {
    let server = server_with(5_000, |i| i as i64 * 60).await;
    let source = source(&server);
    for sampling in [Sampling::Random, keyed(), Sampling::Reservoir] {
        let sample = source
            .read_window(&window(0, 5_000 * 60, 5_000, sampling, 8))
            .await
            .unwrap();
        assert_eq!(sample.method, SamplingMethod::All);
        assert_eq!(
            (sample.available, sample.sampled(), sample.scanned),
            (5_000, 5_000, 5_000)
        );
        // Strata in time order, ids ascending within each: here, every id in order.
        assert_eq!(ids(&sample), (0..5_000).collect::<Vec<u64>>());
    }
    assert_eq!(server.calls_of("query"), 0);
}

#[tokio::test]
async fn the_strata_of_a_whole_window_are_read_in_parallel_at_most_read_concurrency_at_a_time() {
    for concurrency in [1, 2, 4] {
        let server = server_with(2_000, |i| i as i64 * 60).await;
        // Every call waits 50 ms: requests a client sends together overlap in the server.
        server.set_delay(std::time::Duration::from_millis(50));
        let mut config = QdrantConfig::new(&server.url);
        config.page_size = Some(100);
        config.concurrency = concurrency;
        let source = QdrantSource::new(config, schema()).unwrap();
        let sample = source
            .read_window(&window(0, 2_000 * 60, 2_000, Sampling::Reservoir, 8))
            .await
            .unwrap();
        assert_eq!(sample.method, SamplingMethod::All);
        assert_eq!(ids(&sample), (0..2_000).collect::<Vec<u64>>());
        // 8 strata of 250 points in pages of 100: 24 scrolls, `concurrency` of them in flight at once.
        assert_eq!(server.calls_of("scroll"), 24);
        assert_eq!(
            server.most_concurrent_calls(),
            concurrency as u64,
            "readConcurrency {concurrency}"
        );
    }
}

#[tokio::test]
async fn indexed_timestamp_and_sample_key_fields_give_the_samples_an_unindexed_scan_gives() {
    let time = accelerating(6_000);
    let scanned = server_with(6_000, &time).await;
    let indexed = server_with(6_000, &time).await;
    indexed.index_field("frames", "timestamp");
    indexed.index_field("frames", "sample_key");
    for sampling in [keyed(), Sampling::Reservoir] {
        let query = window(DAY, 8 * DAY, 1_000, sampling, 8);
        let a = source(&scanned).read_window(&query).await.unwrap();
        let b = source(&indexed).read_window(&query).await.unwrap();
        assert_eq!((a.available, a.scanned), (b.available, b.scanned));
        assert_eq!(ids(&a), ids(&b));
    }
    // Points written after the index was built are found through it.
    indexed.insert("frames", [point(6_000, 3 * DAY)]);
    let sample = source(&indexed)
        .read_window(&window(3 * DAY, 3 * DAY + 1, 10, Sampling::Reservoir, 1))
        .await
        .unwrap();
    assert_eq!(ids(&sample), vec![6_000]);
}

#[tokio::test]
async fn a_reservoir_window_is_reproducible_and_reads_every_point() {
    let server = server_with(8_000, |i| i as i64 * 30).await;
    let source = source(&server);
    let query = window(0, 8_000 * 30, 500, Sampling::Reservoir, 8);
    let a = source.read_window(&query).await.unwrap();
    assert_eq!(a.method, SamplingMethod::Reservoir);
    assert_eq!((a.sampled(), a.scanned), (500, 8_000));
    assert_eq!(a.embeddings, source.read_window(&query).await.unwrap().embeddings);
}

#[tokio::test]
async fn a_sampled_point_without_the_configured_vector_is_dimension_mismatch() {
    let server = TestQdrant::start().await;
    server.create_collection(
        "frames",
        VectorShape::Named(vec![("image".into(), 2), ("text".into(), 3)]),
    );
    server.insert(
        "frames",
        (0..300u64).map(|id| {
            let mut p = TestPoint::named(id, "image", vec![1.0; 2], json!({"timestamp": T0 + id as i64}));
            if id != 150 && id != 151 {
                p.vectors.insert("text".into(), vec![1.0; 3]);
            }
            p
        }),
    );
    let mut schema = schema();
    schema.vector_name = Some("text".into());
    let source = QdrantSource::new(QdrantConfig::new(&server.url), schema).unwrap();
    // 299 of 300 points: the draw holds at least one of the two without a "text" vector.
    let err = source
        .read_window(&window(0, 300, 299, Sampling::Random, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::DimensionMismatch { found: 0, point, .. } if point == "150" || point == "151"),
        "{err}"
    );
}

// --- uniformity --------------------------------------------------------------------------------------

/// Chi-square p-values of a sample of the accelerating window against its true distribution: over 16
/// equal time bins (expected in proportion to the points in each) and over the ids modulo 16.
fn uniformity(sample: &WindowSample, n: u64, time: &impl Fn(u64) -> i64) -> (f64, f64) {
    let bins = 16;
    let bin_of = |i: u64| ((time(i) * bins as i64) / (8 * DAY)).min(bins as i64 - 1) as usize;
    let mut population = vec![0u64; bins];
    (0..n).for_each(|i| population[bin_of(i)] += 1);
    let mut observed = vec![0u64; bins];
    let mut by_id = vec![0u64; bins];
    for id in ids(sample) {
        observed[bin_of(id)] += 1;
        by_id[(id % bins as u64) as usize] += 1;
    }
    let k = sample.sampled() as f64;
    let expected: Vec<f64> = population.iter().map(|&c| k * c as f64 / n as f64).collect();
    let uniform = vec![k / bins as f64; bins];
    (
        chi_square::p_value(&observed, &expected),
        chi_square::p_value(&by_id, &uniform),
    )
}

#[tokio::test]
async fn random_sample_key_and_reservoir_samples_are_uniform_over_time_and_over_ids() {
    let n = 20_000;
    let time = accelerating(n);
    let server = server_with(n, &time).await;
    let source = source(&server);
    for sampling in [Sampling::Random, keyed(), Sampling::Reservoir] {
        let sample = source
            .read_window(&window(0, 8 * DAY, 2_000, sampling.clone(), 8))
            .await
            .unwrap();
        assert_eq!(sample.sampled(), 2_000);
        let (over_time, over_ids) = uniformity(&sample, n, &time);
        assert!(over_time > 1e-4, "{sampling:?}: time bins p = {over_time}");
        assert!(over_ids > 1e-4, "{sampling:?}: id bins p = {over_ids}");
    }
}

#[tokio::test]
async fn time_strata_hold_the_sample_to_the_arrival_rate_where_qdrants_segments_would_not() {
    // 40 000 points one minute apart in segments of 10 000: the window (ids 5 000..25 000) is half of
    // segment 0, all of segment 1 and half of segment 2; segment 3 has none of it. Qdrant's random
    // sample stops its weighted draw when it picks a segment with nothing left (segment 3) and fills up
    // from the segments in order, so one query over the window returns mostly segment 0's points. Eight
    // strata of 2 500 minutes each lie inside one segment and get exact quotas.
    let server = server_with(40_000, |i| i as i64 * 60).await;
    server.set_segment_points(10_000);
    let source = source(&server);
    let quarter = |id: u64| ((id - 5_000) / 5_000) as usize;
    let p_value = |sample: &WindowSample| {
        let mut observed = vec![0u64; 4];
        ids(sample).into_iter().for_each(|id| observed[quarter(id)] += 1);
        chi_square::p_value(&observed, &[375.0; 4])
    };
    let one = source
        .read_window(&window(5_000 * 60, 25_000 * 60, 1_500, Sampling::Random, 1))
        .await
        .unwrap();
    assert!(p_value(&one) < 1e-6, "one stratum: p = {}", p_value(&one));
    let eight = source
        .read_window(&window(5_000 * 60, 25_000 * 60, 1_500, Sampling::Random, 8))
        .await
        .unwrap();
    assert!(p_value(&eight) > 1e-4, "eight strata: p = {}", p_value(&eight));
    // Sample keys do not depend on segments at all.
    let keyed = source
        .read_window(&window(5_000 * 60, 25_000 * 60, 1_500, keyed(), 1))
        .await
        .unwrap();
    assert!(p_value(&keyed) > 1e-4, "sample keys: p = {}", p_value(&keyed));
}

#[derive(clap::Parser)]
struct LoadCli {
    #[command(flatten)]
    args: driftwatch::job::load::LoadArgs,
}

#[tokio::test]
async fn points_loaded_with_a_sample_key_field_are_sampled_by_key() {
    use clap::Parser;
    let server = TestQdrant::start().await;
    let rows = driftwatch::job::load::Rows {
        vectors: ndarray::Array2::from_shape_fn((2_000, 4), |(i, j)| if j == 0 { i as f32 } else { 1.0 }),
        timestamps: Some((0..2_000).map(|i| (T0 + i * 60) as f64).collect()),
        confidence: None,
        payloads: None,
    };
    let cli = LoadCli::try_parse_from([
        "load",
        "--qdrant-url",
        &server.url,
        "--collection",
        "frames",
        "--create",
        "--embeddings",
        "unused.npy",
        "--timestamp-format",
        "unixSeconds",
        "--sample-key-field",
        "sample_key",
    ])
    .unwrap();
    driftwatch::job::load::upsert_rows(&cli.args, &rows)
        .await
        .unwrap();
    assert_eq!(
        server.payload("frames", 17).unwrap()["sample_key"].as_f64(),
        Some(sample_key_of_id(17))
    );
    let sample = source(&server)
        .read_window(&window(0, 2_000 * 60, 200, keyed(), 4))
        .await
        .unwrap();
    assert_eq!(sample.method, SamplingMethod::SampleKey);
    assert_eq!(sample.sampled(), 200);
}
