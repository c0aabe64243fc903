//! Measures how fast `driftwatch`'s Qdrant source reads a large window from the gRPC test server, and
//! the reader's peak memory. The server runs in a child process so the reader's peak RSS is its own.
//!
//! ```text
//! cargo run --release --example qdrant_throughput -- [POINTS] [DIM] [MAX_SAMPLE] [PAGE_SIZE]
//! ```
//! Defaults: 100000 points × 768-d, sample max 100000 (every point kept), pages of 512.

#[path = "../tests/support/qdrant_server.rs"]
mod qdrant_server;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use driftwatch::api::v1alpha1::TimestampFormat;
use driftwatch::source::qdrant::{QdrantConfig, QdrantSource};
use driftwatch::source::{PointSchema, TimeRange, WindowQuery};
use qdrant_server::{TestPoint, TestQdrant, VectorShape};
use rand::{Rng, SeedableRng};

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn serve(points: usize, dim: usize) {
    let server = TestQdrant::start().await;
    server.create_collection("bench", VectorShape::Single(dim as u64));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let batch = 10_000;
    for start in (0..points).step_by(batch) {
        let chunk: Vec<TestPoint> = (start..(start + batch).min(points))
            .map(|i| {
                let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
                TestPoint::new(
                    i as u64,
                    v,
                    serde_json::json!({"timestamp": START + i as i64, "confidence": 0.5}),
                )
            })
            .collect();
        server.insert("bench", chunk);
    }
    println!("{}", server.url);
    std::io::stdout().flush().ok();
    // Serve until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
}

#[tokio::main]
async fn main() {
    let points = arg(1, 100_000);
    let dim = arg(2, 768);
    let max = arg(3, 100_000);
    let page = arg(4, 512);
    if std::env::var_os("DRIFTWATCH_BENCH_SERVE").is_some() {
        serve(points, dim).await;
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([points.to_string(), dim.to_string()])
        .env("DRIFTWATCH_BENCH_SERVE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("server url");
    let url = url.trim().to_string();

    let mut config = QdrantConfig::new(&url);
    config.page_size = page as u32;
    let schema = PointSchema {
        vector_name: None,
        timestamp_field: "timestamp".into(),
        timestamp_format: TimestampFormat::UnixSeconds,
        confidence_field: Some("confidence".into()),
        read_points: false,
        payload_fields: Vec::new(),
    };
    let source = QdrantSource::new(config, schema).expect("client");
    let query = WindowQuery {
        collection: "bench".into(),
        filter: None,
        range: Some(TimeRange {
            start: jiff::Timestamp::from_second(START).ok(),
            end: jiff::Timestamp::from_second(START + points as i64).ok(),
        }),
        max_points: max,
        seed: 42,
        stream: 1,
    };
    let rss_before = peak_rss_kib();
    let started = Instant::now();
    let sample = source.read_window(&query).await.expect("read window");
    let seconds = started.elapsed().as_secs_f64();
    let rss = peak_rss_kib();
    drop(child.stdin.take());
    let _ = child.wait();

    let megabytes = sample.scanned as f64 * dim as f64 * 4.0 / 1e6;
    let sample_mb = sample.embeddings.len() as f64 * 4.0 / 1e6;
    println!(
        "read {} points × {dim}-d (page {page}) in {seconds:.2}s: {:.0} points/s, {:.1} MB/s of vectors",
        sample.scanned,
        sample.scanned as f64 / seconds,
        megabytes / seconds
    );
    println!(
        "sample kept {} of {} available ({sample_mb:.1} MB); reader peak RSS {:.1} MiB (before the read {:.1} MiB)",
        sample.sampled(),
        sample.available,
        rss as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}
