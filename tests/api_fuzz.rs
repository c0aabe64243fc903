//! Property-based fuzzing of the governance API from its own OpenAPI document with schemathesis (from
//! PyPI, installed by hack/api-test-deps.sh) against a running server on the real control plane: no input
//! may produce a 5xx. The run's numbers are printed and kept in `<target>/test-artifacts/fuzz/`.

#[path = "support/api_server.rs"]
mod api_server;
#[path = "support/control_plane.rs"]
mod control_plane;

use std::path::PathBuf;

use api_server::{ADMIN, event, seed_event, seed_monitor, start};
use control_plane::ControlPlane;
use driftwatch::http::api::{ApiSettings, AuthMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generated_request_makes_the_api_fail_with_a_server_error() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("fuzz").await;
    seed_monitor(&client, &ns, "frames", api_server::monitor_status(5, None)).await;
    seed_event(
        &client,
        &ns,
        event("frames-202611260200", "frames", "2026-11-26T02:00:00Z", 0.31),
        None,
    )
    .await;
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    api_server::wait_for_events(server.addr, &ns, 1).await;

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts").join("fuzz");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let examples = std::env::var("DRIFTWATCH_FUZZ_EXAMPLES").unwrap_or_else(|_| "40".to_string());
    let output = tokio::process::Command::new("schemathesis")
        .arg("run")
        .arg(format!("http://{}/openapi.json", server.addr))
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", &examples])
        .args([
            "--seed",
            "20261126",
            "--workers",
            "1",
            "--no-color",
            "--generation-database",
            "none",
        ])
        .args(["--request-timeout", "20"])
        .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--report", "junit"])
        .arg(format!("--report-dir={}", dir.display()))
        .current_dir(&dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run schemathesis (install with hack/api-test-deps.sh)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    std::fs::write(dir.join("schemathesis.txt"), format!("{stdout}\n{stderr}")).expect("write log");
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.contains("test cases")
                || l.contains("passed")
                || l.contains("failed")
                || l.contains("generated")
                || l.contains("requests")
        })
        .collect();
    eprintln!("schemathesis summary:\n{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "schemathesis found server errors:\n{stdout}\n{stderr}"
    );
}
