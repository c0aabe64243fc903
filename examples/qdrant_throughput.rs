//! Measures how `driftwatch`'s Qdrant source reads one window from the gRPC test server: wall time, points
//! read, CPU time of the reader and of the server, and the reader's peak memory. The server runs in a
//! child process (so the reader's peak RSS and CPU time are its own) and holds exactly the window.
//!
//! ```text
//! cargo run --release --example qdrant_throughput -- [--points N] [--dim D] [--max M]
//!     [--mode random|sampleKey|reservoir] [--strata K] [--concurrency C] [--page P]
//!     [--check target/release/driftwatch] [--no-index]
//! ```
//! Defaults: 100000 points × 768-d, max 100000 (every point kept: a whole-window read), random, 8 strata,
//! 4 at a time, pages of about 1 MiB. Every point carries a `sample_key` payload field (as
//! `driftwatch qdrant-load --sample-key-field sample_key` writes it); `timestamp` and `sample_key` have
//! a numeric payload index (as `qdrant-load` and a production collection have), unless `--no-index`, when
//! every filtered call scans every point. Prints one markdown table row.
//!
//! With `--check`, the server also holds a comparison window (the hour after the window, 5000 points) and
//! the given `driftwatch` binary then runs a whole check (reference = the window, sampled to `--max` by
//! the same mode, default detectors) under `/usr/bin/time`: the row ends with that check's wall time and
//! the peak RSS of its process, i.e. of the check Job.

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
/// Points of the comparison window served for `--check`: the hour after the window.
const COMPARISON_POINTS: usize = 5_000;

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

async fn serve(points: usize, dim: usize, no_index: bool) {
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
                        "confidence": rng.random::<f64>(),
                        "sample_key": sample_key_of_id(i as u64),
                    }),
                )
            })
            .collect();
        server.insert("bench", chunk);
    }
    // The comparison window, shifted by 0.1 in every component.
    let comparison: Vec<TestPoint> = (0..COMPARISON_POINTS)
        .map(|j| {
            let id = (points + j) as u64;
            let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.4).collect();
            TestPoint::new(
                id,
                v,
                serde_json::json!({
                    "timestamp": START + points as i64 + (j % 3600) as i64,
                    "confidence": rng.random::<f64>() * 0.9,
                    "sample_key": sample_key_of_id(id),
                }),
            )
        })
        .collect();
    server.insert("bench", comparison);
    if !no_index {
        server.index_field("bench", "timestamp");
        server.index_field("bench", "sample_key");
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
    let no_index = std::env::args().any(|a| a == "--no-index");
    if std::env::var_os("DRIFTWATCH_BENCH_SERVE").is_some() {
        serve(points, dim, no_index).await;
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
        .args(no_index.then_some("--no-index"))
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
        sampling,
        strata,
    };
    let rss_before = peak_rss_kib();
    let (cpu_before, server_before) = (cpu_seconds("self"), cpu_seconds(&server_pid));
    let started = Instant::now();
    let sample = source.read_window(&query).await.expect("read window");
    let seconds = started.elapsed().as_secs_f64();
    let (scanned, method, available, sampled) =
        (sample.scanned, sample.method, sample.available, sample.sampled());
    let (cpu, server_cpu) = (
        cpu_seconds("self") - cpu_before,
        cpu_seconds(&server_pid) - server_before,
    );
    let rss = peak_rss_kib();
    drop(sample);
    let check = flag("check").map(|binary| run_check(&binary, &url, points, max, &mode, strata, concurrency));
    drop(child.stdin.take());
    let _ = child.wait();

    let megabytes = scanned as f64 * dim as f64 * 4.0 / 1e6;
    let page_text = page.map(|p| p.to_string()).unwrap_or_else(|| "auto".into());
    let check_text = check
        .map(|(wall, rss)| format!(" {wall:.2} s | {:.1} MiB |", rss as f64 / 1024.0))
        .unwrap_or_default();
    println!(
        "| {points} × {dim} | {max} | {} | {strata} × {concurrency} | {page_text} | {:.2} s | {} | {:.0} points/s ({:.0} MB/s) | {cpu:.2} s | {server_cpu:.2} s | {:.1} MiB (idle {:.1}) |{check_text}",
        method.as_str(),
        seconds,
        scanned,
        scanned as f64 / seconds,
        megabytes / seconds,
        rss as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
    assert_eq!(available, points as u64);
    assert_eq!(sampled, max.min(points));
}

fn rfc3339(second: i64) -> String {
    jiff::Timestamp::from_second(second)
        .expect("timestamp")
        .to_string()
}

/// Runs `driftwatch check` over the served window (reference) and the hour after it (comparison) under
/// `/usr/bin/time`; returns its wall seconds and peak RSS in KiB. Panics when the check fails.
fn run_check(
    binary: &str,
    url: &str,
    points: usize,
    max: usize,
    mode: &str,
    strata: usize,
    concurrency: usize,
) -> (f64, u64) {
    let dir = std::env::temp_dir().join(format!("qdrant-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (log, times) = (dir.join("termination-log"), dir.join("time"));
    let end = START + points as i64;
    let mut args: Vec<String> = [
        "-f",
        "%e %M",
        "-o",
        times.to_str().expect("path"),
        binary,
        "check",
        "--qdrant-url",
        url,
        "--collection",
        "bench",
        "--timestamp-field",
        "timestamp",
        "--timestamp-format",
        "unixSeconds",
        "--confidence-field",
        "confidence",
        "--comparison",
        "1h",
        "--sampling-mode",
        mode,
        "--output",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (name, value) in [
        ("reference-start", rfc3339(START)),
        ("reference-end", rfc3339(end)),
        ("at", rfc3339(end + 3600)),
        ("max-reference", max.to_string()),
        ("max-comparison", COMPARISON_POINTS.to_string()),
        ("strata", strata.to_string()),
        ("read-concurrency", concurrency.to_string()),
        ("termination-log", log.to_string_lossy().to_string()),
    ] {
        args.extend([format!("--{name}"), value]);
    }
    if mode == "sampleKey" {
        args.extend(["--sample-key-field".to_string(), "sample_key".to_string()]);
    }
    let out = Command::new("/usr/bin/time")
        .args(&args)
        .output()
        .expect("run /usr/bin/time driftwatch check");
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success() && report.contains("\"samples\""),
        "check failed: {}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&report).expect("result document");
    eprintln!("check samples: {}", doc["result"]["samples"]);
    let text = std::fs::read_to_string(&times).expect("time output");
    let mut fields = text.split_whitespace();
    let wall = fields.next().and_then(|v| v.parse().ok()).expect("wall time");
    let rss = fields.next().and_then(|v| v.parse().ok()).expect("peak RSS");
    let _ = std::fs::remove_dir_all(&dir);
    (wall, rss)
}
