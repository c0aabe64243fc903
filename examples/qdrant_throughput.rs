//! Measures how `driftwatch`'s Qdrant source reads one window from the gRPC test server: wall time, points
//! read, CPU time of the reader and of the server, and the reader's peak memory. The server runs in a
//! child process (so the reader's peak RSS and CPU time are its own) and holds exactly the window.
//!
//! ```text
//! cargo run --release --example qdrant_throughput -- [--points N] [--dim D] [--max M]
//!     [--mode random|sampleKey|reservoir] [--strata K] [--concurrency C] [--page P]
//! ```
//! Defaults: 100000 points × 768-d, max 100000 (every point kept: a whole-window read), random, 8 strata,
//! 4 at a time, pages of about 4 MiB. Every point carries a `sample_key` payload field (as
//! `driftwatch qdrant-load --sample-key-field sample_key` writes it). Prints one markdown table row.

#[path = "../tests/support/qdrant_server.rs"]
mod qdrant_server;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use driftwatch::api::v1alpha1::TimestampFormat;
use driftwatch::source::qdrant::{QdrantConfig, QdrantSource};
use driftwatch::source::sampling::sample_key_of_id;
use driftwatch::source::{PointSchema, Sampling, TimeRange, WindowQuery};
use qdrant_server::{TestPoint, TestQdrant, VectorShape};
use rand::{Rng, SeedableRng};

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// `--name value` from the command line.
fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(name: &str, default: usize) -> usize {
    flag(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_kib() -> u64 {
    status_kib("/proc/self/status", "VmHWM:")
}

fn status_kib(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of a process (fields 14 and 15 of /proc/<pid>/stat).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // In USER_HZ, 100 per second on Linux.
    ticks / 100.0
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
                    serde_json::json!({
                        "timestamp": START + i as i64,
                        "confidence": 0.5,
                        "sample_key": sample_key_of_id(i as u64),
                    }),
                )
            })
            .collect();
        server.insert("bench", chunk);
    }
    println!("{} {}", server.url, std::process::id());
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
    let points = number("points", 100_000);
    let dim = number("dim", 768);
    let max = number("max", 100_000);
    let strata = number("strata", 8);
    let concurrency = number("concurrency", 4);
    let page = flag("page").and_then(|p| p.parse::<u32>().ok());
    let mode = flag("mode").unwrap_or_else(|| "random".into());
    if std::env::var_os("DRIFTWATCH_BENCH_SERVE").is_some() {
        serve(points, dim).await;
        return;
    }
    let sampling = match mode.as_str() {
        "random" => Sampling::Random,
        "sampleKey" => Sampling::SampleKey {
            field: "sample_key".into(),
        },
        "reservoir" => Sampling::Reservoir,
        other => panic!("--mode {other}: use random, sampleKey or reservoir"),
    };
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["--points", &points.to_string(), "--dim", &dim.to_string()])
        .env("DRIFTWATCH_BENCH_SERVE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server url");
    let mut parts = line.split_whitespace();
    let url = parts.next().expect("url").to_string();
    let server_pid = parts.next().expect("pid").to_string();

    let mut config = QdrantConfig::new(&url);
    config.page_size = page;
    config.concurrency = concurrency;
    let schema = PointSchema {
        vector_name: None,
        timestamp_field: "timestamp".into(),
        timestamp_format: TimestampFormat::UnixSeconds,
        confidence_field: Some("confidence".into()),
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
        sampling,
        strata,
    };
    let rss_before = peak_rss_kib();
    let (cpu_before, server_before) = (cpu_seconds("self"), cpu_seconds(&server_pid));
    let started = Instant::now();
    let sample = source.read_window(&query).await.expect("read window");
    let seconds = started.elapsed().as_secs_f64();
    let (cpu, server_cpu) = (
        cpu_seconds("self") - cpu_before,
        cpu_seconds(&server_pid) - server_before,
    );
    let rss = peak_rss_kib();
    drop(child.stdin.take());
    let _ = child.wait();

    let megabytes = sample.scanned as f64 * dim as f64 * 4.0 / 1e6;
    let page_text = page.map(|p| p.to_string()).unwrap_or_else(|| "auto".into());
    println!(
        "| {points} × {dim} | {max} | {} | {strata} × {concurrency} | {page_text} | {:.2} s | {} | {:.0} points/s ({:.0} MB/s) | {cpu:.2} s | {server_cpu:.2} s | {:.1} MiB (idle {:.1}) |",
        sample.method.as_str(),
        seconds,
        sample.scanned,
        sample.scanned as f64 / seconds,
        megabytes / seconds,
        rss as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
    assert_eq!(sample.available, points as u64);
    assert_eq!(sample.sampled(), max.min(points));
}
