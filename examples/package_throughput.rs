//! Packaging throughput and memory: samples N synthetic points of D dimensions (generated on the fly, so
//! the source holds nothing), writes the archive, and reports points/s, MB/s and peak RSS (VmHWM).
//!
//! cargo run --release --example package_throughput -- --points 10000 --dims 768 [--format zip]
//! cargo run --release --example package_throughput -- --points 100000 --dims 768 --sample 100000

use std::time::Instant;

use driftwatch::api::v1alpha1::ArchiveFormat;
use driftwatch::job::package::source::{Point, PointId, PointSource};
use driftwatch::job::package::webhook::WindowBody;
use driftwatch::job::package::{Plan, build_archive};

struct Synthetic {
    points: u64,
    dims: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

fn point(id: u64, dims: usize) -> Point {
    let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let vector = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    Point {
        id: PointId::Num(id),
        timestamp: Some(format!(
            "2026-11-25T{:02}:{:02}:{:02}Z",
            (id / 3600) % 24,
            (id / 60) % 60,
            id % 60
        )),
        payload: serde_json::json!({"camera": format!("cam-{}", id % 16), "confidence": (id % 100) as f64 / 100.0,
            "frame_uri": format!("s3://frames/cam-{}/{id}.jpg", id % 16)}),
        vector,
    }
}

impl PointSource for Synthetic {
    type Error = Never;

    async fn scan_ids(&self, visit: &mut (dyn FnMut(PointId) + Send)) -> Result<u64, Never> {
        for id in 0..self.points {
            visit(PointId::Num(id));
        }
        Ok(self.points)
    }

    async fn fetch(&self, ids: &[PointId]) -> Result<Vec<Point>, Never> {
        Ok(ids
            .iter()
            .filter_map(|id| match id {
                PointId::Num(n) if *n < self.points => Some(point(*n, self.dims)),
                _ => None,
            })
            .collect())
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let points: u64 = arg(&args, "--points", "10000").parse()?;
    let dims: usize = arg(&args, "--dims", "768").parse()?;
    let sample: u64 = arg(&args, "--sample", &points.to_string()).parse()?;
    let format = match arg(&args, "--format", "tar.gz").as_str() {
        "zip" => ArchiveFormat::Zip,
        _ => ArchiveFormat::TarGz,
    };
    let plan = Plan {
        namespace: "bench".into(),
        event: "throughput".into(),
        event_uid: None,
        monitor: "bench".into(),
        reference_window: WindowBody::default(),
        comparison_window: WindowBody::default(),
        drift_scores: serde_json::json!([]),
        approved_by: "bench".into(),
        reason: None,
        created_at: "2026-11-26T00:00:00Z".into(),
        sample_size: sample,
        seed: 42,
        format,
        source: serde_json::json!({}),
        objects: None,
    };
    let work = tempfile::tempdir()?;
    let rss_before = peak_rss_mib();
    let start = Instant::now();
    let built = build_archive(&Synthetic { points, dims }, &plan, work.path(), None).await?;
    let seconds = start.elapsed().as_secs_f64();
    let raw_mb = (built.points as f64 * dims as f64 * 4.0) / 1e6;
    println!(
        "format={format:?} window={points} sampled={} dims={dims} archive={:.1} MB in {seconds:.2}s: \
         {:.0} points/s, {:.1} MB/s of vectors, {:.1} MB/s of archive; peak RSS {:.0} MiB (at start {:.0} MiB)",
        built.points,
        built.file.size as f64 / 1e6,
        built.points as f64 / seconds,
        raw_mb / seconds,
        built.file.size as f64 / 1e6 / seconds,
        peak_rss_mib(),
        rss_before,
    );
    Ok(())
}
