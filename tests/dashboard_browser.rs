//! The governance dashboard in a real headless browser: a running controller (with its HTTP server and
//! the governance API) on the real control plane serves the dashboard; Playwright (playwright-core from npm)
//! drives Debian's chromium: signs in with a real ServiceAccount token, sees the seeded monitor chart and
//! events, approves one with a reason, ignores another and sees its status change, finds Approve disabled
//! on an event with nothing to trigger, sees what changed and where (slices, region shares, example points
//! with their frame links), and a viewer gets a clear 403. With a Grafana URL configured, each monitor
//! embeds its panel; with an image origin configured, example links on that origin show their image and
//! no other origin's image loads. The scripts are in `tests/browser/` (shared parts in `harness.mjs`).
//! Screenshots land in `<target>/test-artifacts/dashboard/`. Needs `hack/api-test-deps.sh`.

#[path = "support/api_server.rs"]
mod api_server;
#[path = "support/control_plane.rs"]
mod control_plane;

use std::{path::PathBuf, sync::Arc, time::Duration};

use api_server::{admin_config, event, roles, seed_event, seed_monitor, service_account_token};
use control_plane::ControlPlane;
use driftwatch::{
    api::v1alpha1::{Decision, DriftEvent, Phase},
    controller::{self, Config, Handles, JobSettings, SystemClock},
    http::api::{ApiConfig, ApiSettings, AuthMode},
    metrics::Metrics,
};
use kube::{Api, Client};

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("test-artifacts").join("dashboard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_and_ignores_drift_events_in_the_dashboard() {
    let cp = ControlPlane::shared();
    let config = admin_config(cp).await;
    let client = Client::try_from(config.clone()).expect("client");
    let ns = cp.namespace("dashboard").await;
    roles(&client, &ns, &[]).await;
    let approver = service_account_token(&client, &ns, "reviewer", Some("driftwatch-approver")).await;
    let viewer = service_account_token(&client, &ns, "auditor", Some("driftwatch-viewer")).await;
    let stranger = service_account_token(&client, &ns, "stranger", None).await;
    seed_monitor(
        &client,
        &ns,
        "frames",
        api_server::monitor_status(12, Some("frames-202611260200")),
    )
    .await;
    let at = |d: u32| format!("2026-11-{d:02}T02:00:00Z");
    seed_event(
        &client,
        &ns,
        event("frames-202611260200", "frames", &at(26), 0.31),
        Some("NeedsReview"),
    )
    .await;
    // What changed and where, as a check with spec.explain reports it: one drifted camera, a new region.
    Api::<DriftEvent>::namespaced(client.clone(), &ns)
        .patch_status(
            "frames-202611260200",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&serde_json::json!({"status": {"explanation": {
                "slices": [
                    {"field": "camera_id", "value": "cam-7", "status": "drifted", "counts": [2480, 640],
                     "shares": [0.124, 0.128], "pValue": 0.0005, "adjustedPValue": 0.004,
                     "examples": [{"id": "48211", "fields": {"frame_url": "https://frames.example.com/cam-7/48211.jpg"}},
                                  {"id": "48302", "fields": {"frame_url": "https://frames.example.com/cam-7/48302.jpg"}}]},
                    {"field": "camera_id", "value": "cam-9", "status": "appeared", "counts": [0, 150],
                     "shares": [0.0, 0.03]},
                    {"field": "camera_id", "value": "cam-2", "status": "unchanged", "counts": [2510, 610],
                     "shares": [0.1255, 0.122], "pValue": 0.41, "adjustedPValue": 0.82}
                ],
                "slicesTested": 8,
                "regions": [
                    {"region": 3, "kind": "new", "counts": [12, 260], "shares": [0.0006, 0.052],
                     "examples": [{"id": "50017", "fields": {"frame_url": "https://frames.example.com/cam-9/50017.jpg"}}]},
                    {"region": 0, "kind": "shrunk", "counts": [9100, 2010], "shares": [0.455, 0.402]}
                ],
                "seconds": 1.9
            }}})),
        )
        .await
        .expect("explanation");
    seed_event(
        &client,
        &ns,
        event("frames-202611250200", "frames", &at(25), 0.19),
        Some("NeedsReview"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("frames-202611240200", "frames", &at(24), 0.14),
        Some("NeedsReview"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("frames-202611200200", "frames", &at(20), 0.22),
        Some("Actioned"),
    )
    .await;
    // A monitor without spec.retraining and an event of it in review: nothing to trigger.
    let mut bare = api_server::monitor("bare");
    bare.spec.retraining = None;
    Api::<driftwatch::api::v1alpha1::DriftMonitor>::namespaced(client.clone(), &ns)
        .create(&Default::default(), &bare)
        .await
        .expect("bare monitor");
    seed_event(
        &client,
        &ns,
        event("bare-202611230200", "bare", &at(23), 0.4),
        Some("NeedsReview"),
    )
    .await;

    with_dashboard(
        client.clone(),
        ns.clone(),
        config,
        ApiSettings::default(),
        |addr| async move {
            api_server::wait_for_events(addr, &ns, 5).await;
            // The controller records that the bare monitor's event has nothing to trigger.
            let bare = format!("/api/v1/drift-events/{ns}/bare-202611230200");
            for _ in 0..400 {
                let r = api_server::get(addr, &bare, Some(&approver)).await;
                if r.status == 200 && r.json()["nothing_to_trigger"].is_string() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            drive_browser(addr, &ns, &approver, &viewer, &stranger, &client).await;
        },
    )
    .await;
}

/// Runs a controller serving the dashboard for `ns` next to `body`, which gets its address; stops it when
/// `body` is done. (The controller future is not Send — it holds a watch guard across an await — so it runs
/// in this task, next to the body.)
async fn with_dashboard<F, Fut>(
    client: Client,
    ns: String,
    config: kube::Config,
    settings: ApiSettings,
    body: F,
) where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let handles = Handles::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = controller::run_with(
        client,
        dashboard_config(&ns, config, settings),
        handles.clone(),
        async move {
            let _ = stop_rx.await;
        },
    );
    let body = async move {
        let addr = serving(&handles).await;
        body(addr).await;
        let _ = stop_tx.send(());
    };
    let (stopped, ()) = tokio::join!(controller, body);
    assert!(stopped.is_ok(), "the controller stopped cleanly: {stopped:?}");
}

/// A controller serving the dashboard for `ns` (auth on, decisions as the caller).
fn dashboard_config(ns: &str, config: kube::Config, settings: ApiSettings) -> Config {
    Config {
        namespaces: vec![ns.to_string()],
        jobs: JobSettings::new("driftwatch:test"),
        metrics: Arc::new(Metrics::new("video_ai").expect("metrics")),
        clock: Arc::new(SystemClock),
        http_addr: Some("127.0.0.1:0".parse().expect("addr")),
        http: Default::default(),
        leader_election: None,
        instance: Some("dashboard-test".into()),
        concurrency: 4,
        api: Some(ApiConfig {
            auth: AuthMode::Enabled,
            client_config: Some(config),
            settings,
        }),
    }
}

/// The controller's HTTP address, once it serves.
async fn serving(handles: &Handles) -> std::net::SocketAddr {
    for _ in 0..400 {
        if let Some(addr) = handles.http_addr() {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the controller does not serve HTTP");
}

/// A web server on loopback that answers every path with `body` as `content_type`; the request heads it
/// saw are kept.
async fn fake_web_server(
    content_type: &'static str,
    body: &'static [u8],
) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                if !head.is_empty() {
                    log.lock().expect("log").push(head);
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(header.as_bytes()).await;
                let _ = stream.write_all(body).await;
            });
        }
    });
    (addr, seen)
}

/// The request lines among request heads.
fn request_lines(heads: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    heads
        .lock()
        .expect("requests")
        .iter()
        .filter_map(|h| h.lines().next().map(str::to_string))
        .collect()
}

/// A stand-in Grafana on loopback: every path answers a small HTML page with a `#panel` element.
async fn fake_grafana() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    fake_web_server(
        "text/html",
        b"<!doctype html><html><body><div id=\"panel\">video_ai_drift_score panel</div></body></html>",
    )
    .await
}

/// Runs a browser script against the dashboard at `addr` with `env`; panics with its output if it fails.
async fn run_browser_script(script: &str, addr: std::net::SocketAddr, env: &[(&str, String)]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("BASE_URL", format!("http://{addr}"))
        .env("SCREENSHOT_DIR", artifacts())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (install with hack/api-test-deps.sh)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("browser: {stdout}{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
}

/// A namespace with the chart's roles, a monitor `frames` with 12 checks of history, and the token of a
/// ServiceAccount bound to driftwatch-viewer.
struct Viewed {
    config: kube::Config,
    client: Client,
    ns: String,
    viewer: String,
}

async fn viewed_monitor(prefix: &str) -> Viewed {
    let cp = ControlPlane::shared();
    let config = admin_config(cp).await;
    let client = Client::try_from(config.clone()).expect("client");
    let ns = cp.namespace(prefix).await;
    roles(&client, &ns, &[]).await;
    let viewer = service_account_token(&client, &ns, "auditor", Some("driftwatch-viewer")).await;
    seed_monitor(&client, &ns, "frames", api_server::monitor_status(12, None)).await;
    Viewed {
        config,
        client,
        ns,
        viewer,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_thumbnails_load_only_from_the_configured_image_origin() {
    let Viewed {
        config,
        client,
        ns,
        viewer,
    } = viewed_monitor("thumbnails").await;
    seed_event(
        &client,
        &ns,
        event("frames-202611260200", "frames", "2026-11-26T02:00:00Z", 0.31),
        Some("NeedsReview"),
    )
    .await;
    let (images, requests) = fake_web_server("image/png", include_bytes!("browser/fixtures/frame.png")).await;
    // The same server under another name is another origin, which is not allowed.
    let allowed = format!("http://{images}/cam-7/48211.png");
    let other = format!("http://localhost:{}/cam-9/50017.png", images.port());
    Api::<DriftEvent>::namespaced(client.clone(), &ns)
        .patch_status(
            "frames-202611260200",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&serde_json::json!({"status": {"explanation": {
                "slices": [{"field": "camera_id", "value": "cam-7", "status": "drifted", "counts": [2480, 640],
                            "shares": [0.124, 0.128], "pValue": 0.0005, "adjustedPValue": 0.004,
                            "examples": [{"id": "48211", "fields": {"frame_url": allowed, "camera_id": "cam-7"}}]}],
                "slicesTested": 3,
                "regions": [{"region": 3, "kind": "new", "counts": [12, 260], "shares": [0.0006, 0.052],
                             "examples": [{"id": "50017", "fields": {"frame_url": other}}]}],
            }}})),
        )
        .await
        .expect("explanation");
    let settings = ApiSettings {
        image_origins: vec![format!("http://{images}")],
        ..ApiSettings::default()
    };

    let event = format!("{ns}/frames-202611260200");
    with_dashboard(client.clone(), ns.clone(), config, settings, |addr| async move {
        api_server::wait_for_events(addr, &ns, 1).await;
        run_browser_script(
            "thumbnails.test.mjs",
            addr,
            &[
                ("TOKEN", viewer),
                ("NAMESPACE", ns.clone()),
                ("EVENT", event),
                ("ALLOWED_IMAGE", allowed),
                ("OTHER_IMAGE", other),
            ],
        )
        .await;
    })
    .await;
    assert_eq!(
        request_lines(&requests),
        ["GET /cam-7/48211.png HTTP/1.1"],
        "only the allowed origin's image was fetched"
    );
    let head = requests.lock().expect("requests")[0].to_ascii_lowercase();
    assert!(
        !head.contains("\r\nreferer:"),
        "the image is fetched without a referrer: {head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_grafana_panel_is_embedded_next_to_the_built_in_chart() {
    let Viewed {
        config,
        client,
        ns,
        viewer,
    } = viewed_monitor("grafana").await;
    let (grafana, requests) = fake_grafana().await;
    let settings = ApiSettings {
        grafana_url: Some(format!(
            "http://{grafana}/d-solo/driftwatch/drift?orgId=1&panelId=2"
        )),
        ..ApiSettings::default()
    };

    let env = [
        ("TOKEN", viewer),
        ("NAMESPACE", ns.clone()),
        ("MONITOR", "frames".to_string()),
        ("GRAFANA_ORIGIN", format!("http://{grafana}")),
        // The same server under another name: another origin, which the policy must refuse.
        ("OTHER_ORIGIN", format!("http://localhost:{}", grafana.port())),
    ];
    with_dashboard(client.clone(), ns.clone(), config, settings, |addr| async move {
        run_browser_script("grafana.test.mjs", addr, &env).await;
    })
    .await;
    let requests = request_lines(&requests);
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /d-solo/driftwatch/drift?") && r.contains("var-monitor=frames")),
        "Grafana was asked for the monitor's panel: {requests:?}"
    );
}

async fn drive_browser(
    addr: std::net::SocketAddr,
    ns: &str,
    approver: &str,
    viewer: &str,
    stranger: &str,
    client: &Client,
) {
    let event = |name: &str| format!("{ns}/{name}");
    run_browser_script(
        "dashboard.test.mjs",
        addr,
        &[
            ("APPROVER_TOKEN", approver.to_string()),
            ("VIEWER_TOKEN", viewer.to_string()),
            ("STRANGER_TOKEN", stranger.to_string()),
            ("APPROVE_EVENT", event("frames-202611260200")),
            ("IGNORE_EVENT", event("frames-202611250200")),
            ("VIEWER_EVENT", event("frames-202611240200")),
            ("DECIDED_EVENT", event("frames-202611200200")),
            ("NOTHING_EVENT", event("bare-202611230200")),
            (
                "DOCS_SCREENSHOT",
                std::env::var("DRIFTWATCH_DOCS_SCREENSHOT").unwrap_or_default(),
            ),
            ("NAMESPACE", ns.to_string()),
        ],
    )
    .await;
    assert!(artifacts().join("dashboard.png").exists(), "screenshot saved");

    // The decisions reached the resources, as the signed-in user.
    let events: Api<DriftEvent> = Api::namespaced(client.clone(), ns);
    let user = format!("system:serviceaccount:{ns}:reviewer");
    let approved = events.get("frames-202611260200").await.expect("event");
    let approval = approved.spec.approval.expect("approved");
    assert_eq!(
        (approval.decision, approval.approved_by.as_str()),
        (Decision::Approve, user.as_str())
    );
    assert_eq!(
        approval.reason.as_deref(),
        Some("new camera firmware shifted the embeddings")
    );
    let ignored = events.get("frames-202611250200").await.expect("event");
    assert_eq!(ignored.spec.approval.expect("ignored").decision, Decision::Ignore);
    assert_eq!(
        ignored.status.and_then(|s| s.phase),
        Some(Phase::Ignored),
        "the controller moved it on"
    );
    let untouched = events.get("frames-202611240200").await.expect("event");
    assert_eq!(untouched.spec.approval, None, "the viewer could not decide");
}
