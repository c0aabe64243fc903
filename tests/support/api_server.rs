//! Test support for the governance API: starts the API router (own reflector stores, real TokenReview and
//! SubjectAccessReview) against the test control plane on a free loopback port, a minimal HTTP/1.1 client,
//! seeding helpers for monitors, events and ServiceAccounts with RBAC. Does process-local network I/O.
#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use driftwatch::{
    api::v1alpha1::{DriftEvent, DriftMonitor},
    http::api::{self, ApiSettings, ApiState, ApiStores, AuthMode, Authenticator, stores::StoreTasks},
};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::ServiceAccount,
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use super::control_plane::ControlPlane;

/// A running API server.
pub struct Server {
    pub addr: SocketAddr,
    _tasks: StoreTasks,
    serve: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

/// The control plane's admin configuration (the controller's identity in these tests).
pub async fn admin_config(cp: &ControlPlane) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(cp.kubeconfig_path()).expect("read kubeconfig");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("load kubeconfig")
}

/// Starts the API (all namespaces) with `mode`, waits for its caches.
pub async fn start(cp: &ControlPlane, mode: AuthMode, settings: ApiSettings) -> Server {
    let config = admin_config(cp).await;
    let client = Client::try_from(config.clone()).expect("client");
    let (stores, tasks) = ApiStores::start(&client, &[]);
    tokio::time::timeout(Duration::from_secs(60), stores.wait_until_ready())
        .await
        .expect("API caches synced");
    // Bounded: a watch that ended (its store's writer dropped) also ends the wait above, without the
    // readiness flag ever being set.
    for _ in 0..3_000 {
        if stores.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stores.is_ready(),
        "the API's stores never became ready (a watch ended?)"
    );
    let state = ApiState {
        auth: Arc::new(Authenticator::new(mode, client.clone(), Some(config))),
        client,
        stores,
        settings: Arc::new(settings),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serve = tokio::spawn(async move {
        let _ = axum::serve(listener, api::router(state)).await;
    });
    Server {
        addr,
        _tasks: tasks,
        serve,
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body.as_bytes()).await.expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    request(addr, "GET", path, token, None).await
}

pub async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &Value) -> Response {
    request(addr, "POST", path, token, Some(&body.to_string())).await
}

/// A DriftMonitor with a short history.
pub fn monitor(name: &str) -> DriftMonitor {
    serde_json::from_value(json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 2 * * *",
            "source": {"qdrant": {"url": "http://qdrant:6334", "collection": "video_frames"}},
            "windows": {"reference": {"duration": "7d", "offset": "24h"}, "comparison": {"duration": "24h"}},
            "detectors": [
                {"method": "kl_divergence", "source": "embeddings", "threshold": 0.1},
                {"method": "psi", "source": "confidence_scores", "threshold": 0.2}
            ],
            "retraining": {
                "s3": {"bucket": "video-ai-retraining-data", "prefix": "batches/"},
                "webhook": {"urlSecretRef": {"name": "retrain", "key": "url"}}
            }
        }
    }))
    .expect("monitor")
}

/// A monitor status with `n` daily checks, the last ones drifting.
pub fn monitor_status(n: usize, open_event: Option<&str>) -> Value {
    let history: Vec<Value> = (0..n)
        .map(|i| {
            let kl = 0.03 + 0.02 * i as f64;
            let psi = 0.05 + 0.015 * i as f64;
            json!({
                "checkId": format!("c-{i}"),
                "time": format!("2026-11-{:02}T02:00:00Z", 10 + i),
                "driftDetected": kl > 0.1,
                "scores": [
                    {"method": "kl_divergence", "source": "embeddings", "score": kl, "threshold": 0.1, "drifted": kl > 0.1},
                    {"method": "psi", "source": "confidence_scores", "score": psi, "threshold": 0.2, "drifted": psi > 0.2}
                ]
            })
        })
        .collect();
    let mut status = json!({
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Scheduled", "message": "next check scheduled", "lastTransitionTime": "2026-11-10T00:00:00Z"},
            {"type": "Drifted", "status": "True", "reason": "DriftDetected", "message": "kl_divergence on embeddings fired", "lastTransitionTime": "2026-11-15T02:00:00Z"}
        ],
        "lastScheduleTime": format!("2026-11-{:02}T02:00:00Z", 9 + n),
        "nextScheduleTime": format!("2026-11-{:02}T02:00:00Z", 10 + n),
        "lastScore": 0.03 + 0.02 * (n - 1) as f64,
        "history": history,
    });
    if let Some(e) = open_event {
        status["openEvent"] = json!(e);
    }
    status
}

/// A DriftEvent of `monitor` detected at `at`.
pub fn event(name: &str, monitor: &str, at: &str, score: f64) -> DriftEvent {
    serde_json::from_value(json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftEvent",
        "metadata": {"name": name, "labels": {"driftwatch.dev/monitor": monitor}},
        "spec": {
            "monitorRef": {"name": monitor},
            "detectedAt": at,
            "driftScore": score,
            "checkId": format!("{name}-check"),
            "source": "controller",
            "samples": {"reference": 20000, "comparison": 5000, "referenceAvailable": 48211, "comparisonAvailable": 6120},
            "scores": [
                {"method": "kl_divergence", "source": "embeddings", "score": score, "threshold": 0.1, "drifted": score > 0.1},
                {"method": "emd", "source": "embeddings", "score": score / 4.0, "threshold": 0.05, "drifted": score / 4.0 > 0.05},
                {"method": "mmd", "source": "embeddings", "score": 0.012, "pValue": 0.004, "drifted": true},
                {"method": "psi", "source": "confidence_scores", "score": 0.08, "threshold": 0.2, "drifted": false}
            ],
            "referenceWindow": {"start": "2026-11-18T02:00:00Z", "end": "2026-11-25T02:00:00Z"},
            "comparisonWindow": {"start": "2026-11-25T02:00:00Z", "end": at}
        }
    }))
    .expect("event")
}

/// Creates a monitor with a status.
pub async fn seed_monitor(client: &Client, ns: &str, name: &str, status: Value) {
    let api: Api<DriftMonitor> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &monitor(name))
        .await
        .expect("create monitor");
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .expect("monitor status");
}

/// Creates an event, with `phase` in status when given.
pub async fn seed_event(client: &Client, ns: &str, event: DriftEvent, phase: Option<&str>) {
    let api: Api<DriftEvent> = Api::namespaced(client.clone(), ns);
    let name = event.metadata.name.clone().expect("name");
    api.create(&PostParams::default(), &event)
        .await
        .expect("create event");
    if let Some(phase) = phase {
        let status = json!({"status": {"phase": phase, "occurrences": 1, "transitions": [
            {"phase": "NeedsReview", "time": "2026-11-26T02:00:05Z", "actor": "driftwatch-controller", "message": "drift detected"}
        ]}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("event status");
    }
}

/// Waits until the API lists `n` events in `ns` (the caches follow the API server).
pub async fn wait_for_events(addr: SocketAddr, ns: &str, n: usize) {
    for _ in 0..400 {
        let r = get(addr, &format!("/drift-events?namespace={ns}"), Some(ADMIN)).await;
        if r.status == 200 && r.json()["events"].as_array().map(Vec::len) == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the API never listed {n} events in {ns}");
}

pub const ADMIN: &str = super::control_plane::ADMIN_TOKEN;

/// RBAC for a namespace: `driftwatch-viewer` (read) and `driftwatch-approver` (read, patch events, and the
/// `approve` verb on the monitors named, or on all when `monitors` is empty).
pub async fn roles(client: &Client, ns: &str, monitors: &[&str]) {
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    let viewer: Role = serde_json::from_value(json!({
        "metadata": {"name": "driftwatch-viewer"},
        "rules": [{"apiGroups": ["driftwatch.dev"], "resources": ["driftevents", "driftmonitors"], "verbs": ["get", "list", "watch"]}]
    }))
    .expect("role");
    let mut approve =
        json!({"apiGroups": ["driftwatch.dev"], "resources": ["driftmonitors"], "verbs": ["approve"]});
    if !monitors.is_empty() {
        approve["resourceNames"] = json!(monitors);
    }
    let approver: Role = serde_json::from_value(json!({
        "metadata": {"name": "driftwatch-approver"},
        "rules": [
            {"apiGroups": ["driftwatch.dev"], "resources": ["driftevents", "driftmonitors"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["driftwatch.dev"], "resources": ["driftevents"], "verbs": ["patch", "update"]},
            approve
        ]
    }))
    .expect("role");
    roles
        .create(&PostParams::default(), &viewer)
        .await
        .expect("viewer role");
    roles
        .create(&PostParams::default(), &approver)
        .await
        .expect("approver role");
}

/// A ServiceAccount bound to `role`, and a real token for it (TokenRequest API).
pub async fn service_account_token(client: &Client, ns: &str, name: &str, role: Option<&str>) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).expect("sa");
    sas.create(&PostParams::default(), &sa).await.expect("create sa");
    if let Some(role) = role {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
        }))
        .expect("binding");
        Api::<RoleBinding>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &binding)
            .await
            .expect("create binding");
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["https://kubernetes.default.svc.cluster.local".to_string()],
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued = sas
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("token request");
    issued.status.expect("token status").token
}
