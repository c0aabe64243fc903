//! Building blocks of the end-to-end tests on the real cluster: the shared Helm release, test servers as
//! Pods behind Services, the example monitor as users apply it, S3 and webhook read-back. Process and
//! network I/O. Needs `cluster` and `s3_server` next to it in the test crate.
#![allow(dead_code)]

use std::io::Read;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use driftwatch::api::v1alpha1::{DriftEvent, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use super::cluster::{Cluster, output, repo_root, run, wait_for};
use super::s3_server::S3Server;

pub const RELEASE: &str = "driftwatch";
pub const RELEASE_NS: &str = "driftwatch-system";
/// The monitor of examples/drift-monitor-minimal.yaml.
pub const MONITOR: &str = "video-frames";
pub const COLLECTION: &str = "video_frames";
pub const BUCKET: &str = "retrain-batches";
pub const HMAC_KEY: &str = "e2e-hmac-key";
const CONTROLLER_LABEL: &str = "app.kubernetes.io/component=controller";

/// Tests that share the release hold it for reading; tests that disrupt the controller hold it alone.
pub static SHARED_RELEASE: RwLock<()> = RwLock::const_new(());
static RELEASE_LOCK: Mutex<()> = Mutex::new(());

/// `helm <verb> driftwatch charts/driftwatch -n driftwatch-system` with this build's image.
pub fn release_args(verb: &str) -> Vec<String> {
    let cluster = Cluster::shared();
    let (repository, tag) = cluster.image.rsplit_once(':').expect("image:tag");
    [
        verb,
        RELEASE,
        &repo_root().join("charts/driftwatch").display().to_string(),
        "--namespace",
        RELEASE_NS,
        "--set",
        &format!("image.repository={repository}"),
        "--set",
        &format!("image.tag={tag}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Installs the release (admission policy on, other values default) unless it is deployed.
pub fn ensure_release(cluster: &Cluster) {
    let _guard = RELEASE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let status = output(
        cluster
            .helm()
            .args(["status", RELEASE, "-n", RELEASE_NS, "-o", "json"]),
    );
    if status.status.success() {
        let json: Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        let values = output(
            cluster
                .helm()
                .args(["get", "values", RELEASE, "-n", RELEASE_NS, "-o", "json"]),
        );
        let values: Value = serde_json::from_slice(&values.stdout).unwrap_or_default();
        let tag = cluster.image.rsplit_once(':').map(|(_, tag)| tag);
        if json["info"]["status"] == "deployed" && values["image"]["tag"].as_str() == tag {
            return;
        }
    }
    // A release of an earlier build (a developer's cluster left up) is upgraded to this build's image.
    let t0 = std::time::Instant::now();
    run(cluster.helm().args(release_args("upgrade")).args([
        "--install",
        "--create-namespace",
        "--wait",
        "--timeout",
        "180s",
    ]));
    eprintln!(
        "helm install: controller Ready in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

pub async fn controller_url(cluster: &Cluster) -> String {
    let services: Api<Service> = Api::namespaced(cluster.client().await, RELEASE_NS);
    let service = services.get("driftwatch").await.expect("the chart's Service");
    let spec = service.spec.unwrap();
    format!(
        "http://{}:{}",
        spec.cluster_ip.unwrap(),
        spec.ports.unwrap()[0].port
    )
}

pub async fn controller_pod(cluster: &Cluster) -> Pod {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, RELEASE_NS);
    let list = pods
        .list(&ListParams::default().labels(CONTROLLER_LABEL))
        .await
        .unwrap();
    list.items
        .into_iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .expect("a controller Pod")
}

/// The admin's bearer token (static token of hack/cluster.sh).
pub fn admin_token(cluster: &Cluster) -> String {
    let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token in the admin kubeconfig")
        .to_string()
}

/// A test server Pod behind a Service of the same name.
pub struct Testbed {
    pub name: String,
    pub cluster_ip: String,
}

impl Testbed {
    /// The gRPC (qdrant) or HTTP (webhook) port.
    pub fn url(&self) -> String {
        let port = if self.name == "qdrant" { 6334 } else { 8080 };
        format!("http://{}:{port}", self.cluster_ip)
    }

    pub fn control_url(&self) -> String {
        format!("http://{}:8081", self.cluster_ip)
    }
}

pub async fn deploy_testbed(cluster: &Cluster, ns: &str, name: &str, args: &[&str]) -> Testbed {
    let client = cluster.client().await;
    let port = if name == "qdrant" { 6334 } else { 8080 };
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": name,
                "image": cluster.testbed_image,
                "imagePullPolicy": "IfNotPresent",
                "args": args,
                "ports": [{"containerPort": port}, {"containerPort": 8081}],
                "readinessProbe": {"tcpSocket": {"port": 8081}, "periodSeconds": 1},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]}},
            }],
        }
    }))
    .unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [
            {"name": "main", "port": port, "targetPort": port},
            {"name": "control", "port": 8081, "targetPort": 8081},
        ]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create testbed Pod");
    let service = Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &service)
        .await
        .expect("create testbed Service");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_for(
        &format!("{ns}/{name} Ready"),
        Duration::from_secs(120),
        || async {
            let pod = pods.get(name).await.map_err(|e| e.to_string())?;
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            ready.then_some(()).ok_or_else(|| format!("{:?}", pod.status))
        },
    )
    .await;
    let testbed = Testbed {
        name: name.to_string(),
        cluster_ip: service.spec.unwrap().cluster_ip.unwrap(),
    };
    // The Service answers once kube-proxy has programmed it.
    let control = testbed.control_url();
    wait_for(
        &format!("the {name} Service"),
        Duration::from_secs(60),
        || async {
            reqwest::get(format!(
                "{control}/{}",
                if name == "qdrant" { "calls" } else { "received" }
            ))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        },
    )
    .await;
    testbed
}

/// Loads the bundled example data into the Qdrant test server (through its ClusterIP): the last day is the
/// comparison window (with a known drift), the 7 days before it the reference. Returns the end of the data.
pub fn load_example_data(cluster: &Cluster, qdrant: &Testbed) -> jiff::Timestamp {
    let _ = cluster;
    let to = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_driftwatch")).args([
        "qdrant-load",
        "--qdrant-url",
        &qdrant.url(),
        "--collection",
        COLLECTION,
        "--example",
        "--example-dir",
        &repo_root().join("examples/data").display().to_string(),
        "--to",
        &to.to_string(),
    ]));
    to
}

pub async fn set_qdrant_delay(qdrant: &Testbed, ms: u64) {
    reqwest::Client::new()
        .put(format!("{}/delay?ms={ms}", qdrant.control_url()))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("set the Qdrant test server's delay");
}

/// What the webhook receiver got, oldest first.
pub async fn received(webhook: &Testbed) -> Vec<Value> {
    reqwest::get(format!("{}/received", webhook.control_url()))
        .await
        .expect("GET /received")
        .json()
        .await
        .expect("JSON list")
}

/// A delivery carries the event's uid as Idempotency-Key and an HMAC over its exact body.
pub fn assert_signed(delivery: &Value, event_uid: &str) {
    use hmac::{Hmac, Mac};
    let headers = &delivery["headers"];
    assert_eq!(headers["idempotency-key"], event_uid, "{delivery}");
    let body = delivery["body"].as_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HMAC_KEY.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-driftwatch-signature"], expected.as_str(), "{delivery}");
}

/// moto's S3 server on the node's address, reachable from the Pods.
pub fn s3(cluster: &Cluster) -> &'static S3Server {
    let server = S3Server::shared_at(&cluster.node_ip);
    static BUCKET_MADE: OnceLock<()> = OnceLock::new();
    BUCKET_MADE.get_or_init(|| {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(server.create_bucket(BUCKET))
            });
        });
    });
    server
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// manifest.json of a batch.tar.gz.
pub fn manifest_of(archive: &[u8]) -> Value {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy().ends_with("manifest.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return serde_json::from_str(&text).unwrap();
        }
    }
    panic!("no manifest.json in the archive");
}

/// Secrets `s3` (credentials) and `retrain` (webhook URL and HMAC key) in `ns`.
pub fn create_retraining_secrets(cluster: &Cluster, ns: &str, s3: &S3Server) {
    let env = s3.env();
    let value = |k: &str| env.iter().find(|(name, _)| *name == k).unwrap().1.clone();
    run(cluster.kubectl().args([
        "create",
        "secret",
        "generic",
        "s3",
        "-n",
        ns,
        &format!("--from-literal=AWS_ACCESS_KEY_ID={}", value("AWS_ACCESS_KEY_ID")),
        &format!(
            "--from-literal=AWS_SECRET_ACCESS_KEY={}",
            value("AWS_SECRET_ACCESS_KEY")
        ),
    ]));
    run(cluster.kubectl().args([
        "create",
        "secret",
        "generic",
        "retrain",
        "-n",
        ns,
        &format!("--from-literal=url=http://webhook.{ns}.svc.cluster.local:8080/hook"),
        &format!("--from-literal=hmac-key={HMAC_KEY}"),
    ]));
}

/// `spec.retraining` to S3 on the node and the webhook Pod of `ns`.
pub fn retraining_spec(ns: &str, s3: &S3Server) -> String {
    let _ = ns;
    format!(
        "  retraining:\n    s3:\n      bucket: {BUCKET}\n      prefix: batches/\n      endpoint: {}\n      region: us-east-1\n      \
         credentialsSecretRef: {{name: s3}}\n    webhook:\n      urlSecretRef: {{name: retrain, key: url}}\n      \
         hmacSecretRef: {{name: retrain, key: hmac-key}}\n    sampleSize: 50\n",
        s3.endpoint()
    )
}

pub struct Slot {
    pub cron: String,
    pub at: jiff::Timestamp,
}

/// A cron schedule for the next whole minute at least 20 s away (UTC).
pub fn next_minute_slot() -> Slot {
    let now = jiff::Timestamp::now().as_second();
    let at = (now + 20) / 60 * 60 + 60;
    let time = jiff::Timestamp::from_second(at)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    Slot {
        cron: format!("{} {} * * *", time.minute(), time.hour()),
        at: time.timestamp(),
    }
}

/// examples/drift-monitor-minimal.yaml as a user adapts it: namespace, Qdrant URL, schedule, optional
/// retraining.
pub fn monitor_manifest(ns: &str, cron: &str, retraining: Option<&str>) -> String {
    let example = std::fs::read_to_string(repo_root().join("examples/drift-monitor-minimal.yaml")).unwrap();
    let mut manifest = example
        .replace("namespace: default", &format!("namespace: {ns}"))
        .replace(
            "url: http://qdrant.qdrant.svc:6334",
            &format!("url: http://qdrant.{ns}.svc:6334"),
        )
        .replace("schedule: \"0 2 * * *\"", &format!("schedule: \"{cron}\""));
    assert!(
        manifest.contains(&format!("namespace: {ns}")) && manifest.contains(cron),
        "the example changed shape:\n{example}"
    );
    if !manifest.ends_with('\n') {
        manifest.push('\n');
    }
    if let Some(retraining) = retraining {
        manifest.push_str(retraining);
    }
    manifest
}

/// `kubectl apply -f` of a manifest.
pub fn apply_manifest(cluster: &Cluster, ns: &str, manifest: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{ns}.yaml"));
    std::fs::write(&path, manifest).unwrap();
    run(cluster.kubectl().arg("apply").arg("-f").arg(&path));
}

/// A DriftEvent for the monitor, as the Alertmanager receiver or an operator makes one: comparison window
/// the last day of the example data.
pub async fn create_event_by_hand(cluster: &Cluster, ns: &str) -> String {
    let end = jiff::Timestamp::now();
    let start = end - jiff::SignedDuration::from_hours(24);
    let name = format!("{MONITOR}-by-hand");
    let event: DriftEvent = serde_json::from_value(json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftEvent",
        "metadata": {"name": name, "labels": {"driftwatch.dev/monitor": MONITOR}},
        "spec": {
            "monitorRef": {"name": MONITOR},
            "detectedAt": end.to_string(),
            "driftScore": 0.4,
            "scores": [{"method": "mmd", "source": "embeddings", "score": 0.4, "threshold": 0.05, "drifted": true}],
            "referenceWindow": {"start": (start - jiff::SignedDuration::from_hours(24 * 7)).to_string(), "end": start.to_string()},
            "comparisonWindow": {"start": start.to_string(), "end": end.to_string()}
        }
    }))
    .unwrap();
    Api::<DriftEvent>::namespaced(cluster.client().await, ns)
        .create(&PostParams::default(), &event)
        .await
        .expect("create a DriftEvent");
    name
}

pub async fn wait_phase(events: &Api<DriftEvent>, name: &str, phases: &[Phase]) -> DriftEvent {
    wait_for(
        &format!("{name} in {phases:?}"),
        Duration::from_secs(240),
        || async {
            let event = events.get(name).await.map_err(|e| e.to_string())?;
            let phase = event.status.as_ref().and_then(|s| s.phase);
            match phase {
                Some(p) if phases.contains(&p) => Ok(event),
                other => Err(format!("{other:?}: {:?}", event.status)),
            }
        },
    )
    .await
}

/// A RoleBinding of `user` to a (Cluster)Role in `ns`.
pub async fn grant(cluster: &Cluster, ns: &str, user: &str, kind: &str, role: &str) {
    run(cluster.kubectl().args([
        "create",
        "rolebinding",
        &format!("{user}-{role}"),
        "-n",
        ns,
        &format!(
            "--{}={role}",
            if kind == "ClusterRole" {
                "clusterrole"
            } else {
                "role"
            }
        ),
        &format!("--user={user}"),
    ]));
}

/// A Role that may patch DriftEvents (but grants no `approve`), bound to `user`.
pub async fn create_event_patcher_role(cluster: &Cluster, ns: &str, user: &str) {
    run(cluster.kubectl().args([
        "create",
        "role",
        "event-patcher",
        "-n",
        ns,
        "--verb=get,patch",
        "--resource=driftevents.driftwatch.dev",
    ]));
    grant(cluster, ns, user, "Role", "event-patcher").await;
}

/// The name of a Running Pod with `app.kubernetes.io/component=<component>` in `ns`.
pub async fn running_pod_of_component(
    cluster: &Cluster,
    ns: &str,
    component: &str,
) -> Result<String, String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/component={component}")))
        .await
        .map_err(|e| e.to_string())?;
    list.items
        .iter()
        .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| format!("{} Pods, none Running", list.items.len()))
}

/// Deletes the controller Pod and waits until its replacement is Ready.
pub async fn restart_controller(cluster: &Cluster) {
    let client = cluster.client().await;
    let old = controller_pod(cluster).await.metadata.name.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NS);
    pods.delete(&old, &DeleteParams::default())
        .await
        .expect("delete the controller Pod");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NS);
    wait_for("a new Ready controller", Duration::from_secs(120), || async {
        let list = pods
            .list(&ListParams::default().labels(CONTROLLER_LABEL))
            .await
            .map_err(|e| e.to_string())?;
        let fresh_ready = list.items.iter().any(|p| {
            p.metadata.name.as_deref() != Some(old.as_str())
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        let available = deployments
            .get("driftwatch")
            .await
            .map_err(|e| e.to_string())?
            .status
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        (fresh_ready && available >= 1)
            .then_some(())
            .ok_or_else(|| format!("{} Pods, available {available}", list.items.len()))
    })
    .await;
}

#[derive(Debug, Default)]
pub struct ControllerObservation {
    /// The most controller Pods seen with a running container at one moment.
    pub max_running_controllers: usize,
    /// Every controller Pod seen.
    pub pods_seen: std::collections::BTreeSet<String>,
    /// Lease holders in the order seen.
    pub lease_holders: Vec<String>,
}

/// Polls the controller Pods and the Lease every 200 ms until `stop` is set.
pub async fn watch_controllers(client: Client, stop: Arc<AtomicBool>) -> ControllerObservation {
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NS);
    let leases: Api<Lease> = Api::namespaced(client, RELEASE_NS);
    let mut seen = ControllerObservation::default();
    while !stop.load(Ordering::SeqCst) {
        if let Ok(list) = pods.list(&ListParams::default().labels(CONTROLLER_LABEL)).await {
            let running = list
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                        })
                })
                .count();
            seen.max_running_controllers = seen.max_running_controllers.max(running);
            for pod in &list.items {
                seen.pods_seen
                    .insert(pod.metadata.name.clone().unwrap_or_default());
            }
        }
        if let Ok(lease) = leases.get("driftwatch-controller").await
            && let Some(holder) = lease.spec.and_then(|s| s.holder_identity)
            && seen.lease_holders.last() != Some(&holder)
        {
            seen.lease_holders.push(holder);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

/// Text without ANSI escape sequences.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
