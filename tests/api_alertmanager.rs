//! The Alertmanager receiver on a real kube-apiserver, fed by a real Alertmanager (Debian's
//! `prometheus-alertmanager`, alerts added with `amtool`): a firing alert for a monitor raises its
//! DriftEvent; an alert about a check the controller already raised an event for is counted once; resolved
//! alerts are recorded; malformed or unknown payloads are refused with a reason and write nothing.

#[path = "support/api_server.rs"]
mod api_server;
#[path = "support/control_plane.rs"]
mod control_plane;

use std::{path::Path, process::Stdio, time::Duration};

use api_server::{ADMIN, event, post, request, seed_event, seed_monitor, service_account_token, start};
use control_plane::ControlPlane;
use driftwatch::{
    api::v1alpha1::DriftEvent,
    http::api::{ApiSettings, AuthMode},
};
use k8s_openapi::api::rbac::v1::Role;
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use serde_json::{Value, json};

/// A monitor status whose last check (`<monitor>-202611260200`) found drift.
fn drifted_status(monitor: &str) -> Value {
    let mut status = api_server::monitor_status(3, Some(&format!("{monitor}-202611260200")));
    let check = format!("{monitor}-202611260200");
    status["history"]
        .as_array_mut()
        .expect("history")
        .push(json!({"checkId": check, "time": "2026-11-26T02:00:00Z", "driftDetected": true,
                     "scores": [{"method": "kl_divergence", "source": "embeddings", "score": 0.31, "threshold": 0.1, "drifted": true}]}));
    status["lastResult"] = json!({
        "checkId": check,
        "windows": {"reference": {"start": "2026-11-18T02:00:00Z", "end": "2026-11-25T02:00:00Z"},
                    "comparison": {"start": "2026-11-25T02:00:00Z", "end": "2026-11-26T02:00:00Z"}},
        "samples": {"reference": 20000, "comparison": 5000},
        "scores": [{"method": "kl_divergence", "source": "embeddings", "score": 0.31, "threshold": 0.1, "drifted": true}],
        "driftDetected": true,
        "durationSeconds": 4.2
    });
    status
}

/// The controller's event for that check, in review.
async fn controller_event(client: &Client, ns: &str, monitor: &str) {
    let name = format!("{monitor}-202611260200");
    let mut e = event(&name, monitor, "2026-11-26T02:00:00Z", 0.31);
    e.spec.check_id = Some(name.clone());
    seed_event(client, ns, e, Some("NeedsReview")).await;
    let api: Api<DriftEvent> = Api::namespaced(client.clone(), ns);
    api.patch_status(
        &name,
        &Default::default(),
        &kube::api::Patch::Merge(&json!({"status": {"latestCheckId": name, "occurrences": 1}})),
    )
    .await
    .expect("status");
}

async fn events(client: &Client, ns: &str) -> Vec<DriftEvent> {
    Api::<DriftEvent>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
}

/// A ServiceAccount that may create DriftEvents in `ns` (what Alertmanager authenticates as).
async fn alertmanager_token(client: &Client, ns: &str) -> String {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "driftwatch-alert-receiver"},
        "rules": [{"apiGroups": ["driftwatch.dev"], "resources": ["driftevents"], "verbs": ["create"]}]
    }))
    .expect("role");
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    service_account_token(client, ns, "alertmanager", Some("driftwatch-alert-receiver")).await
}

fn alert(ns: &str, monitor: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "HighDriftDetected", "namespace": ns, "monitor": monitor,
                   "method": "kl_divergence", "source": "embeddings", "severity": "warning"},
        "annotations": {"summary": "High drift detected", "value": "0.27"},
        "startsAt": "2026-11-26T03:00:00.123Z",
        "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-11-26T04:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph?g0.expr=video_ai_drift_score",
        "fingerprint": format!("{:016x}", monitor.len() * 7919)
    })
}

fn notification(alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "driftwatch", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "HighDriftDetected"}, "commonLabels": {"alertname": "HighDriftDetected"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": "{}:{alertname=\"HighDriftDetected\"}", "truncatedAlerts": 0
    })
}

struct Alertmanager {
    child: tokio::process::Child,
    url: String,
}

async fn alertmanager(dir: &Path, receiver: &str, token: &str) -> Alertmanager {
    let port = control_plane::ports::unused_loopback_port().expect("a port for Alertmanager");
    let config = format!(
        "route:\n  receiver: driftwatch\n  group_by: [namespace]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n- name: driftwatch\n  webhook_configs:\n  - url: {receiver}/api/v1/alertmanager\n    send_resolved: true\n\
         \x20   http_config:\n      authorization:\n        type: Bearer\n        credentials: {token}\n"
    );
    std::fs::write(dir.join("alertmanager.yml"), config).expect("config");
    let child = tokio::process::Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            dir.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("alertmanager.log")).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus-alertmanager (install with hack/api-test-deps.sh)");
    let url = format!("http://127.0.0.1:{port}");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let r = api_server::get(addr, "/-/ready", None).await;
            if r.status == 200 {
                return Alertmanager { child, url };
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("alertmanager did not become ready");
}

async fn amtool(am: &Alertmanager, labels: &[String], extra: &[&str]) {
    let out = tokio::process::Command::new("amtool")
        .args(["alert", "add"])
        .args(labels)
        .args(extra)
        .arg(format!("--alertmanager.url={}", am.url))
        .output()
        .await
        .expect("run amtool");
    assert!(
        out.status.success(),
        "amtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn alerts_from_a_real_alertmanager_raise_and_join_drift_events() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("am").await;
    seed_monitor(&client, &ns, "frames", api_server::monitor_status(3, None)).await;
    seed_monitor(&client, &ns, "audio", drifted_status("audio")).await;
    controller_event(&client, &ns, "audio").await;
    let token = alertmanager_token(&client, &ns).await;
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut am = alertmanager(dir.path(), &format!("http://{}", server.addr), &token).await;

    let labels = |monitor: &str| {
        vec![
            "alertname=HighDriftDetected".to_string(),
            format!("namespace={ns}"),
            format!("monitor={monitor}"),
            "method=kl_divergence".to_string(),
            "source=embeddings".to_string(),
        ]
    };
    amtool(&am, &labels("frames"), &["--annotation=value=0.27"]).await;
    amtool(&am, &labels("audio"), &["--annotation=value=0.31"]).await;

    // The frames alert raises the frames event.
    let mut raised = None;
    for _ in 0..600 {
        raised = events(&client, &ns)
            .await
            .into_iter()
            .find(|e| e.spec.monitor_ref.name == "frames");
        if raised.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let raised = raised.unwrap_or_else(|| {
        panic!(
            "no DriftEvent from the alert; alertmanager log:\n{}",
            std::fs::read_to_string(dir.path().join("alertmanager.log")).unwrap_or_default()
        )
    });
    assert_eq!(raised.spec.source.as_deref(), Some("alertmanager"));
    assert_eq!(raised.spec.drift_score, 0.27);
    assert_eq!(raised.status.as_ref().and_then(|s| s.occurrences), Some(1));

    // Resolve the audio alert; once its resolution is recorded, its firing notification was handled too.
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    amtool(
        &am,
        &labels("audio"),
        &["--annotation=value=0.31", &format!("--end={soon}")],
    )
    .await;
    let mut resolved = None;
    for _ in 0..600 {
        let audio = Api::<DriftEvent>::namespaced(client.clone(), &ns)
            .get("audio-202611260200")
            .await
            .expect("audio event");
        if audio
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("driftwatch.dev/alert-resolved-at"))
        {
            resolved = Some(audio);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audio = resolved.expect("the resolved alert is recorded on the open event");
    // The alert about the controller's own check joined its event and counted nothing twice.
    assert_eq!(audio.status.as_ref().and_then(|s| s.occurrences), Some(1));
    let all = events(&client, &ns).await;
    assert_eq!(
        all.len(),
        2,
        "one event per monitor: {:?}",
        all.iter().map(|e| e.metadata.name.clone()).collect::<Vec<_>>()
    );
    let _ = am.child.kill().await;
}

#[tokio::test]
async fn recorded_notifications_are_deduplicated_and_bad_ones_write_nothing() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("am-direct").await;
    seed_monitor(&client, &ns, "frames", api_server::monitor_status(3, None)).await;
    seed_monitor(&client, &ns, "audio", drifted_status("audio")).await;
    controller_event(&client, &ns, "audio").await;
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    let path = "/api/v1/alertmanager";

    // The alert about the controller's check: already counted, no new event.
    let r = post(
        server.addr,
        path,
        Some(ADMIN),
        &notification(vec![alert(&ns, "audio", "firing")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["results"][0]["outcome"], "already-counted");
    assert_eq!(
        r.json()["results"][0]["event_id"],
        format!("{ns}/audio-202611260200")
    );

    // A new alert raises one event; sending it again (Alertmanager repeats) changes nothing.
    let r = post(
        server.addr,
        path,
        Some(ADMIN),
        &notification(vec![alert(&ns, "frames", "firing")]),
    )
    .await;
    assert_eq!(r.json()["results"][0]["outcome"], "created", "{}", r.body);
    let r = post(
        server.addr,
        path,
        Some(ADMIN),
        &notification(vec![alert(&ns, "frames", "firing")]),
    )
    .await;
    assert_eq!(r.json()["results"][0]["outcome"], "already-counted", "{}", r.body);
    let before = events(&client, &ns).await;
    assert_eq!(before.len(), 2);

    // Malformed or unknown: 400 with the reason, nothing written.
    let unknown_monitor = notification(vec![alert(&ns, "frames", "firing"), alert(&ns, "nope", "firing")]);
    let mut no_label = alert(&ns, "frames", "firing");
    no_label["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("namespace");
    let mut v3 = notification(vec![alert(&ns, "frames", "firing")]);
    v3["version"] = json!("3");
    let mut bad_status = notification(vec![alert(&ns, "frames", "firing")]);
    bad_status["alerts"][0]["status"] = json!("pending");
    for (what, body) in [
        ("unknown monitor", unknown_monitor.to_string()),
        ("no namespace label", notification(vec![no_label]).to_string()),
        ("version 3", v3.to_string()),
        ("alert status", bad_status.to_string()),
        ("no alerts", notification(vec![]).to_string()),
        ("not JSON", "{\"version\": \"4\",".to_string()),
        ("wrong shape", json!({"hello": "world"}).to_string()),
    ] {
        let r = request(server.addr, "POST", path, Some(ADMIN), Some(&body)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.json()["error"]["reason"], "BadRequest", "{what}");
    }
    let after = events(&client, &ns).await;
    assert_eq!(
        after
            .iter()
            .map(|e| (e.metadata.name.clone(), e.metadata.resource_version.clone()))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|e| (e.metadata.name.clone(), e.metadata.resource_version.clone()))
            .collect::<Vec<_>>(),
        "nothing written"
    );

    // Only callers allowed to create DriftEvents may post.
    let r = post(
        server.addr,
        path,
        None,
        &notification(vec![alert(&ns, "frames", "firing")]),
    )
    .await;
    assert_eq!(r.status, 401);
    let nobody = service_account_token(&client, &ns, "nobody", None).await;
    let r = post(
        server.addr,
        path,
        Some(&nobody),
        &notification(vec![alert(&ns, "frames", "firing")]),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
}
