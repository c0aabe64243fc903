//! Scale run (not a timed assertion): 300 DriftMonitors on the test control plane, one due slot each, every
//! check completing; prints controller RSS (this process) and reconcile latency p50/p99.
//! Run: `DRIFTWATCH_CONTROL_PLANE_DIR=… cargo bench --bench controller_scale`.

#[path = "../tests/support/control_plane.rs"]
mod control_plane;
#[path = "../tests/support/controller_harness.rs"]
mod harness;

use std::{sync::Arc, time::Instant};

use control_plane::ControlPlane;
use driftwatch::{controller::ManualClock, job::result::CheckReport};
use harness::*;
use jiff::Timestamp;
use kube::ResourceExt;

const MONITORS: usize = 300;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cp = ControlPlane::shared();
        let client = cp.client().await;
        let ns = cp.namespace("scale").await;
        let mut latest = Timestamp::now();
        for i in 0..MONITORS {
            let m = create_monitor(&client, &ns, &monitor_manifest(&format!("m{i:03}"), "0 * * * *")).await;
            latest = created(&m);
        }
        let clock = Arc::new(ManualClock::new(latest));
        let rss_before = rss_kib();
        let running = start(client.clone(), &ns, clock.clone(), None).await;
        let slot = next_hour(latest);
        let t0 = Instant::now();
        clock.set(after(slot, 5));
        let all = wait_for_jobs(&client, &ns, MONITORS).await;
        let scheduled = t0.elapsed();
        for job in &all {
            let name = job.name_any();
            finish_job(
                &client,
                &ns,
                &name,
                &CheckReport::success(&name, outcome(0.05, false)),
                true,
            )
            .await;
        }
        let t1 = Instant::now();
        eventually("all results processed", || async {
            let monitors =
                kube::Api::<driftwatch::api::v1alpha1::DriftMonitor>::namespaced(client.clone(), &ns)
                    .list(&Default::default())
                    .await
                    .ok()?;
            monitors
                .items
                .iter()
                .all(|m| {
                    m.status
                        .as_ref()
                        .and_then(|s| s.last_processed_check_id.as_ref())
                        .is_some()
                })
                .then_some(())
        })
        .await;
        let processed = t1.elapsed();
        let text = running.metrics.render();
        let (p50, p99) = quantiles(&text, "DriftMonitor");
        println!("monitors: {MONITORS}");
        println!(
            "300 Jobs created after the slot in {:.2}s",
            scheduled.as_secs_f64()
        );
        println!(
            "all results folded after the last Job finished in {:.2}s",
            processed.as_secs_f64()
        );
        println!("DriftMonitor reconcile latency p50 <= {p50}s, p99 <= {p99}s (histogram bucket bounds)");
        println!(
            "RSS: {} MiB (before controller start {} MiB; includes the bench harness)",
            rss_kib() / 1024,
            rss_before / 1024
        );
        running.stop().await.expect("stop");
    });
}

/// Upper bucket bounds holding the 50th and 99th percentile of the reconcile duration histogram.
fn quantiles(text: &str, controller: &str) -> (String, String) {
    let prefix = "video_ai_controller_reconcile_duration_seconds_bucket{controller=\"";
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&format!("\"{controller}\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?.to_string();
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    let find = |q: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= q * total)
            .map_or("?".to_string(), |(le, _)| le.clone())
    };
    (find(0.5), find(0.99))
}
