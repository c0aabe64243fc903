//! `kubectl-drift` against a real kube-apiserver, as a process with a kubeconfig per user (impersonating
//! alice, vic): list, get, approve, ignore, already decided, forbidden, check (run-now), history.

#[path = "support/control_plane.rs"]
mod control_plane;

use std::path::PathBuf;
use std::process::{Command, Output};

use control_plane::ControlPlane;
use driftwatch::api::v1alpha1::{DriftEvent, DriftMonitor};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// A kubeconfig for `user` (the admin credentials with `as: user`), or the admin's for None.
fn kubeconfig_for(user: Option<&str>) -> PathBuf {
    let cp = ControlPlane::shared();
    let Some(user) = user else {
        return cp.kubeconfig_path().to_path_buf();
    };
    let text = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    let mut config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for entry in config["users"].as_sequence_mut().unwrap() {
        entry["user"]["as"] = serde_yaml::Value::String(user.to_string());
    }
    // Tests run in parallel and share these files: write aside and rename, so no kubectl-drift process
    // reads one half-written.
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = cp.dir().join(format!("kubeconfig-{user}"));
    let partial = cp.dir().join(format!("kubeconfig-{user}.{n}.partial"));
    std::fs::write(&partial, serde_yaml::to_string(&config).unwrap()).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path
}

fn drift(user: Option<&str>, ns: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-drift"))
        .arg("--kubeconfig")
        .arg(kubeconfig_for(user))
        .args(["-n", ns])
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn event(name: &str, score: f64) -> Value {
    json!({
        "apiVersion": "driftwatch.dev/v1alpha1", "kind": "DriftEvent",
        "metadata": {"name": name},
        "spec": {
            "monitorRef": {"name": "frames"},
            "detectedAt": "2026-11-26T02:00:00Z",
            "driftScore": score,
            "scores": [
                {"method": "kl_divergence", "source": "embeddings", "score": score, "threshold": 0.1, "drifted": true},
                {"method": "mmd", "source": "embeddings", "score": 0.02, "pValue": 0.01, "drifted": true}
            ],
            "referenceWindow": {"start": "2026-11-18T02:00:00Z", "end": "2026-11-25T02:00:00Z"},
            "comparisonWindow": {"start": "2026-11-25T02:00:00Z", "end": "2026-11-26T02:00:00Z"}
        }
    })
}

/// A namespace with a monitor (with score history), three events, alice as approver, vic as viewer.
async fn setup() -> &'static str {
    static NS: OnceCell<String> = OnceCell::const_new();
    NS.get_or_init(|| async {
        let cp = ControlPlane::shared();
        let admin = cp.client().await;
        let roles = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rbac/roles.yaml")).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&roles) {
            let role: ClusterRole = serde::Deserialize::deserialize(doc).unwrap();
            let name = role.metadata.name.clone().unwrap();
            Api::<ClusterRole>::all(admin.clone())
                .patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(&role))
                .await
                .unwrap();
        }
        let ns = cp.namespace("plugin").await;
        for (user, role) in [("alice", "driftwatch-approver"), ("vic", "driftwatch-viewer")] {
            let binding: RoleBinding = serde_json::from_value(json!({
                "metadata": {"name": user},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
            }))
            .unwrap();
            Api::<RoleBinding>::namespaced(admin.clone(), &ns)
                .create(&PostParams::default(), &binding)
                .await
                .unwrap();
        }
        let monitors: Api<DriftMonitor> = Api::namespaced(admin.clone(), &ns);
        let monitor: DriftMonitor = serde_json::from_value(json!({
            "apiVersion": "driftwatch.dev/v1alpha1", "kind": "DriftMonitor",
            "metadata": {"name": "frames"},
            "spec": {
                "schedule": "0 2 * * *",
                "source": {"qdrant": {"url": "http://qdrant:6334", "collection": "frames"}},
                "windows": {"reference": {"duration": "7d", "offset": "24h"}, "comparison": {"duration": "24h"}}
            }
        }))
        .unwrap();
        monitors.create(&PostParams::default(), &monitor).await.unwrap();
        let history: Vec<Value> = (0..12)
            .map(|i| {
                let score = 0.02 + 0.01 * i as f64;
                json!({
                    "checkId": format!("frames-{i}"),
                    "time": format!("2026-11-{:02}T02:00:00Z", 10 + i),
                    "driftDetected": score > 0.1,
                    "scores": [{"method": "kl_divergence", "source": "embeddings", "score": score, "threshold": 0.1, "drifted": score > 0.1}]
                })
            })
            .collect();
        monitors
            .patch_status("frames", &PatchParams::default(), &Patch::Merge(json!({"status": {"history": history}})))
            .await
            .unwrap();
        let events: Api<DriftEvent> = Api::namespaced(admin, &ns);
        for (name, score) in [("frames-a", 0.31), ("frames-b", 0.22), ("frames-c", 0.18)] {
            let e: DriftEvent = serde_json::from_value(event(name, score)).unwrap();
            events.create(&PostParams::default(), &e).await.unwrap();
        }
        ns
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_every_event_with_monitor_score_and_phase() {
    let ns = setup().await;
    let out = tokio::task::spawn_blocking(move || drift(Some("vic"), ns, &["list"]))
        .await
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("EVENT"), "{stdout}");
    for (name, score) in [("frames-a", "0.3100"), ("frames-b", "0.2200")] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            line.contains("frames") && line.contains(score) && line.contains("NeedsReview"),
            "{line}"
        );
    }
    let all = tokio::task::spawn_blocking(move || drift(None, ns, &["list", "-A"]))
        .await
        .unwrap();
    assert!(
        text(&all).0.lines().any(|l| l.starts_with(ns)),
        "{}",
        text(&all).0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_the_scores_and_windows() {
    let ns = setup().await;
    let out = tokio::task::spawn_blocking(move || drift(Some("vic"), ns, &["get", "frames-b"]))
        .await
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("Event:       {ns}/frames-b")),
        "{stdout}"
    );
    assert!(stdout.contains("mmd") && stdout.contains("0.0100"), "{stdout}");
    assert!(stdout.contains("Comparison:  2026-11-25T02:00:00Z"), "{stdout}");
    let missing = tokio::task::spawn_blocking(move || drift(Some("vic"), ns, &["get", "nope"]))
        .await
        .unwrap();
    assert_eq!(missing.status.code(), Some(3));
    assert!(text(&missing).1.contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_records_the_callers_identity_and_a_second_decision_is_refused() {
    let ns = setup().await;
    let out = tokio::task::spawn_blocking(move || {
        drift(
            Some("alice"),
            ns,
            &["approve", "frames-a", "--reason", "new firmware"],
        )
    })
    .await
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "driftevent.driftwatch.dev/frames-a approved by alice"
    );
    let stored = Api::<DriftEvent>::namespaced(ControlPlane::shared().client().await, ns)
        .get("frames-a")
        .await
        .unwrap();
    let approval = stored.spec.approval.unwrap();
    assert_eq!(approval.approved_by, "alice");
    assert_eq!(approval.reason.as_deref(), Some("new firmware"));

    let again = tokio::task::spawn_blocking(move || drift(Some("alice"), ns, &["ignore", "frames-a"]))
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(5));
    assert!(
        text(&again)
            .1
            .contains("was already decided: Approve by alice (new firmware)"),
        "{}",
        text(&again).1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_works_and_a_viewer_gets_a_clear_forbidden_error() {
    let ns = setup().await;
    let denied = tokio::task::spawn_blocking(move || drift(Some("vic"), ns, &["approve", "frames-c"]))
        .await
        .unwrap();
    assert_eq!(denied.status.code(), Some(4));
    assert!(
        text(&denied).1.contains("vic may not decide"),
        "{}",
        text(&denied).1
    );
    let out = tokio::task::spawn_blocking(move || {
        drift(
            Some("alice"),
            ns,
            &["ignore", "frames-c", "--reason", "known seasonal shift"],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("ignored by alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_sets_the_run_now_annotation() {
    let ns = setup().await;
    let out = tokio::task::spawn_blocking(move || drift(None, ns, &["check", "frames"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    let monitor = Api::<DriftMonitor>::namespaced(ControlPlane::shared().client().await, ns)
        .get("frames")
        .await
        .unwrap();
    let value = &monitor.metadata.annotations.unwrap()["driftwatch.dev/run-now"];
    assert!(value.parse::<jiff::Timestamp>().is_ok(), "{value}");
    let denied = tokio::task::spawn_blocking(move || drift(Some("vic"), ns, &["check", "frames"]))
        .await
        .unwrap();
    assert_eq!(denied.status.code(), Some(4));
    assert!(text(&denied).1.contains("driftwatch-editor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_draws_a_sparkline_of_recent_scores() {
    let ns = setup().await;
    let out =
        tokio::task::spawn_blocking(move || drift(Some("vic"), ns, &["history", "frames", "--limit", "8"]))
            .await
            .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("frames: 8 checks"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("kl_divergence/embeddings"))
        .unwrap();
    assert!(row.contains("0.1300 !"), "{row}");
    assert!(row.ends_with("▁▂▃▄▅▆▇█"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_refuses_an_event_with_nothing_to_trigger_and_get_says_why() {
    let ns = setup().await;
    let events = Api::<DriftEvent>::namespaced(ControlPlane::shared().client().await, ns);
    let event: DriftEvent = serde_json::from_value(event("frames-nothing", 0.3)).unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();
    // What the controller records for an event of a monitor without spec.retraining.
    let reason = driftwatch::controller::drift_event::target::no_retraining_reason("frames");
    events
        .patch_status(
            "frames-nothing",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "NeedsReview",
                "retrainingTarget": {"summary": "None", "reason": reason}}})),
        )
        .await
        .unwrap();
    let got = tokio::task::spawn_blocking(move || drift(Some("vic"), ns, &["get", "frames-nothing"]))
        .await
        .unwrap();
    let (stdout, stderr) = text(&got);
    assert!(got.status.success(), "{stderr}");
    assert!(
        stdout.contains("Target:      nothing to trigger: DriftMonitor frames has no spec.retraining"),
        "{stdout}"
    );
    let denied =
        tokio::task::spawn_blocking(move || drift(Some("alice"), ns, &["approve", "frames-nothing"]))
            .await
            .unwrap();
    assert_eq!(denied.status.code(), Some(6), "{}", text(&denied).1);
    assert!(
        text(&denied).1.contains("has nothing to trigger"),
        "{}",
        text(&denied).1
    );
    assert!(
        events
            .get("frames-nothing")
            .await
            .unwrap()
            .spec
            .approval
            .is_none()
    );
    // Ignore still applies.
    let ignored =
        tokio::task::spawn_blocking(move || drift(Some("alice"), ns, &["ignore", "frames-nothing"]))
            .await
            .unwrap();
    assert!(ignored.status.success(), "{}", text(&ignored).1);
}
