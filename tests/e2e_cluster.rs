//! End to end on a real single-node cluster (hack/cluster.sh): the chart installed with Helm from this
//! build's image, the controller in a Pod under its own ServiceAccount and RBAC, check and packaging Jobs run
//! by the Job controller and the kubelet, the Qdrant test server and the webhook receiver as Pods behind
//! Services, moto's S3 server on the node. Everything a user does goes through `kubectl`, `kubectl drift`
//! and `helm`.
//!
//! Tests that disrupt the controller (deleting its Pod, upgrading or uninstalling the release) run alone;
//! the others share the release and run side by side, each in a namespace of its own.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/s3_server.rs"]
mod s3_server;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use driftwatch::api::v1alpha1::{DriftEvent, DriftMonitor, Phase};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};

use cluster::{Cluster, run, wait_for};
use e2e::*;

#[tokio::test]
async fn the_chart_installs_a_ready_controller_that_serves_its_endpoints() {
    let _shared = SHARED_RELEASE.read().await;
    let cluster = Cluster::shared();
    ensure_release(cluster);
    let base = controller_url(cluster).await;
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let healthz = get("/healthz", None).await.expect("GET /healthz");
    assert_eq!(healthz.status(), 200);
    // Series appear with the first monitor (the flow test reads them); the endpoint answers in Prometheus' format.
    let metrics = get("/metrics", None).await.expect("GET /metrics");
    assert_eq!(metrics.status(), 200);
    let content_type = metrics.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let dashboard = get("/", None).await.expect("GET /").text().await.unwrap();
    assert!(dashboard.contains("<html") && dashboard.to_lowercase().contains("driftwatch"));
    // The REST API authenticates the caller with a TokenReview and authorizes it with a SubjectAccessReview.
    let unauthenticated = get("/drift-events?namespace=default", None).await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let admin = admin_token(cluster);
    let events = get("/drift-events", Some(&admin)).await.unwrap();
    assert_eq!(
        events.status(),
        200,
        "{}",
        events.text().await.unwrap_or_default()
    );
    let body: serde_json::Value = events.json().await.unwrap();
    assert!(body.get("events").is_some_and(|i| i.is_array()), "{body}");

    // The controller runs as the chart's ServiceAccount, non-root, with a read-only root filesystem.
    let pod = controller_pod(cluster).await;
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("driftwatch"));
    let container = &spec.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(container.image.as_deref(), Some(cluster.image.as_str()));
}

#[tokio::test]
async fn a_monitor_applied_with_kubectl_checks_raises_an_event_and_an_approval_delivers_one_batch() {
    let _shared = SHARED_RELEASE.read().await;
    let cluster = Cluster::shared();
    ensure_release(cluster);
    let ns = cluster.namespace("e2e-flow").await;
    let _cleanup = cluster.delete_on_drop(&ns);
    let client = cluster.client().await;
    let s3 = s3(cluster);
    let (qdrant, webhook) = tokio::join!(
        deploy_testbed(cluster, &ns, "qdrant", &["qdrant"]),
        deploy_testbed(cluster, &ns, "webhook", &["webhook", "--script", "200"])
    );
    load_example_data(cluster, &qdrant);
    create_retraining_secrets(cluster, &ns, s3);

    // The example monitor, pointed at this namespace's Qdrant (through CoreDNS) and scheduled a minute ahead.
    let slot = next_minute_slot();
    let manifest = monitor_manifest(&ns, &slot.cron, Some(&retraining_spec(&ns, s3)));
    apply_manifest(cluster, &ns, &manifest);
    let monitors: Api<DriftMonitor> = Api::namespaced(client.clone(), &ns);
    let scheduled = wait_for(
        "the scheduled check's result in status",
        Duration::from_secs(200),
        || async {
            let monitor = monitors.get(MONITOR).await.map_err(|e| e.to_string())?;
            let status = monitor.status.clone().unwrap_or_default();
            status
                .last_result
                .clone()
                .ok_or_else(|| format!("{:?}", status.conditions))
        },
    )
    .await;
    let scheduled_jobs = jobs_of_monitor(cluster, &ns).await;
    assert_eq!(
        scheduled_jobs.len(),
        1,
        "one Job for the slot: {scheduled_jobs:?}"
    );
    assert_eq!(scheduled.check_id, scheduled_jobs[0]);

    // `kubectl drift check` runs one more, right away.
    let out = run(cluster.kubectl().args(["drift", "check", MONITOR, "-n", &ns]));
    assert!(out.contains(MONITOR), "{out}");
    let on_demand = wait_for(
        "the on-demand check's result",
        Duration::from_secs(120),
        || async {
            let monitor = monitors.get(MONITOR).await.map_err(|e| e.to_string())?;
            let result = monitor.status.and_then(|s| s.last_result).ok_or("no result")?;
            (result.check_id != scheduled.check_id)
                .then_some(result)
                .ok_or_else(|| format!("still {}", scheduled.check_id))
        },
    )
    .await;
    assert_eq!(jobs_of_monitor(cluster, &ns).await.len(), 2);

    // From inside the check Pod: no Kubernetes token, a read-only root filesystem, uid 65532.
    for check in [&scheduled.check_id, &on_demand.check_id] {
        let log = strip_ansi(&run(cluster.kubectl().args([
            "logs",
            &format!("job/{check}"),
            "-n",
            &ns,
        ])));
        let line = log
            .lines()
            .find(|l| l.contains("pod environment"))
            .unwrap_or_else(|| panic!("no pod environment line in the log of {check}:\n{log}"));
        for expected in ["absent", "read-only", "65532"] {
            assert!(line.contains(expected), "{check}: {line}");
        }
    }

    // The result reached status, the metrics and a DriftEvent with the same score.
    assert!(on_demand.drift_detected, "the example data drifts: {on_demand:?}");
    let first_score = on_demand.scores[0].score;
    let metrics_url = format!("{}/metrics", controller_url(cluster).await);
    let series = format!("namespace=\"{ns}\"");
    wait_for("the score in /metrics", Duration::from_secs(30), || async {
        let text = reqwest::get(&metrics_url)
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let values: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("video_ai_drift_score{") && l.contains(&series))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        values
            .contains(&first_score)
            .then_some(())
            .ok_or_else(|| format!("drift_score values for {ns}: {values:?}"))
    })
    .await;
    let event = wait_for("a DriftEvent", Duration::from_secs(60), || async {
        let monitor = monitors.get(MONITOR).await.map_err(|e| e.to_string())?;
        monitor
            .status
            .and_then(|s| s.open_event)
            .ok_or("no open event".to_string())
    })
    .await;
    let events: Api<DriftEvent> = Api::namespaced(client.clone(), &ns);
    // The open event folds in every firing check: its latest score is the on-demand check's.
    let raised = wait_for(
        "the event to carry the on-demand check",
        Duration::from_secs(60),
        || async {
            let event = events.get(&event).await.map_err(|e| e.to_string())?;
            let latest = event.status.as_ref().and_then(|s| s.latest_check_id.clone());
            (latest.as_deref() == Some(on_demand.check_id.as_str()))
                .then_some(event)
                .ok_or_else(|| format!("latest check {latest:?}"))
        },
    )
    .await;
    assert_eq!(event_phase(&raised), Some(Phase::NeedsReview));
    assert_eq!(
        raised.status.as_ref().and_then(|s| s.latest_score),
        Some(first_score)
    );
    let listed = run(cluster.kubectl().args(["drift", "list", "-n", &ns]));
    let row = listed
        .lines()
        .find(|l| l.starts_with(event.as_str()))
        .unwrap_or_else(|| panic!("{event} not listed:\n{listed}"));
    assert!(row.contains("NeedsReview") && row.contains(MONITOR), "{row}");

    // Deciding: bob may patch events but lacks `approve`; alice is an approver but may not sign as
    // someone else; then alice approves with `kubectl drift approve`.
    grant(cluster, &ns, "bob", "ClusterRole", "driftwatch-viewer").await;
    create_event_patcher_role(cluster, &ns, "bob").await;
    grant(cluster, &ns, "alice", "ClusterRole", "driftwatch-approver").await;
    let refused = cluster::output(cluster.kubectl_as("bob").args([
        "drift",
        "approve",
        &event,
        "-n",
        &ns,
        "--reason",
        "looks fine",
    ]));
    assert_eq!(refused.status.code(), Some(4), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("needs the verb approve"), "{message}");
    let forged = cluster::output(cluster.kubectl_as("alice").args([
        "patch",
        "driftevent",
        &event,
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"approval":{"decision":"Approve","approvedBy":"mallory","reason":"x"}}}"#,
    ]));
    assert!(!forged.status.success());
    let message = String::from_utf8_lossy(&forged.stderr);
    assert!(
        message.contains(r#"you are "alice" but approvedBy says "mallory""#),
        "{message}"
    );
    let approved = run(cluster.kubectl_as("alice").args([
        "drift",
        "approve",
        &event,
        "-n",
        &ns,
        "--reason",
        "new camera firmware",
    ]));
    assert!(approved.contains("approved by alice"), "{approved}");

    let done = wait_phase(&events, &event, &[Phase::Actioned, Phase::RetrainingFailed]).await;
    let retraining = done.status.as_ref().and_then(|s| s.retraining.clone()).unwrap();
    assert_eq!(
        done.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Actioned),
        "{retraining:?}"
    );
    assert_eq!(retraining.attempts, Some(1));
    assert_eq!(retraining.retraining_job_id.as_deref(), Some("retrain-e2e"));
    let key = format!("batches/{ns}/{event}/batch.tar.gz");
    assert_eq!(
        retraining.s3_uri.as_deref(),
        Some(format!("s3://{BUCKET}/{key}").as_str())
    );
    let archive = s3.object(BUCKET, &key).await;
    assert_eq!(Some(sha256_hex(&archive)), retraining.sha256);
    let manifest = manifest_of(&archive);
    assert_eq!(manifest["event"]["name"], event.as_str(), "{manifest}");
    assert_eq!(manifest["approvedBy"], "alice");
    let deliveries = received(&webhook).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_signed(&deliveries[0], raised.metadata.uid.as_deref().unwrap());
    assert_eq!(
        jobs_with_component(cluster, &ns, "retrain-package").await.len(),
        1
    );
}

#[tokio::test]
async fn the_real_job_controller_never_repeats_a_webhook_delivery() {
    let _shared = SHARED_RELEASE.read().await;
    let cluster = Cluster::shared();
    ensure_release(cluster);
    // (script, deliveries expected, final phase)
    let cases = [
        ("400", 1, Phase::RetrainingFailed),
        ("503,503,503,200", 4, Phase::Actioned),
        ("503", 4, Phase::RetrainingFailed),
    ];
    let runs = cases
        .iter()
        .map(|(script, _, _)| approve_with_webhook(cluster, script));
    let outcomes = futures::future::join_all(runs).await;
    let report: Vec<String> = cases
        .iter()
        .zip(&outcomes)
        .map(|((script, _, _), (event, deliveries, pods))| {
            format!(
                "{script}: {deliveries} deliveries, {pods} Pod(s), {:?}",
                event_phase(event)
            )
        })
        .collect();
    eprintln!("webhook deliveries on the real Job controller: {report:?}");
    for ((script, expected, phase), (event, deliveries, pods)) in cases.iter().zip(&outcomes) {
        assert_eq!(deliveries, expected, "webhook script {script}: {report:?}");
        assert_eq!(
            event_phase(event),
            Some(*phase),
            "webhook script {script}: {report:?}"
        );
        assert_eq!(*pods, 1, "one packaging Pod for script {script}: {report:?}");
    }
}

#[tokio::test]
async fn deleting_the_controller_pod_mid_job_loses_nothing_and_repeats_nothing() {
    let _alone = SHARED_RELEASE.write().await;
    let cluster = Cluster::shared();
    ensure_release(cluster);
    let ns = cluster.namespace("e2e-crash").await;
    let _cleanup = cluster.delete_on_drop(&ns);
    let client = cluster.client().await;
    let s3 = s3(cluster);
    let (qdrant, webhook) = tokio::join!(
        deploy_testbed(cluster, &ns, "qdrant", &["qdrant"]),
        deploy_testbed(cluster, &ns, "webhook", &["webhook", "--script", "slow:7"])
    );
    load_example_data(cluster, &qdrant);
    create_retraining_secrets(cluster, &ns, s3);
    apply_manifest(
        cluster,
        &ns,
        &monitor_manifest(&ns, "0 0 1 1 *", Some(&retraining_spec(&ns, s3))),
    );

    // A check that takes a while (Qdrant answers late); the controller Pod is deleted while it runs.
    set_qdrant_delay(&qdrant, 4000).await;
    run(cluster.kubectl().args(["drift", "check", MONITOR, "-n", &ns]));
    let job = wait_for("a running check Pod", Duration::from_secs(90), || async {
        running_pod_of_component(cluster, &ns, "drift-check").await
    })
    .await;
    restart_controller(cluster).await;
    set_qdrant_delay(&qdrant, 0).await;
    let monitors: Api<DriftMonitor> = Api::namespaced(client.clone(), &ns);
    let result = wait_for(
        "the check's result after the restart",
        Duration::from_secs(180),
        || async {
            let monitor = monitors.get(MONITOR).await.map_err(|e| e.to_string())?;
            monitor
                .status
                .and_then(|s| s.last_result)
                .ok_or("no result yet".to_string())
        },
    )
    .await;
    assert_eq!(jobs_of_monitor(cluster, &ns).await, vec![result.check_id.clone()]);
    assert!(job.starts_with(&result.check_id), "{job} vs {}", result.check_id);
    let event = wait_for("the DriftEvent", Duration::from_secs(60), || async {
        let monitor = monitors.get(MONITOR).await.map_err(|e| e.to_string())?;
        monitor
            .status
            .and_then(|s| s.open_event)
            .ok_or("none".to_string())
    })
    .await;
    let events: Api<DriftEvent> = Api::namespaced(client.clone(), &ns);
    assert_eq!(events.list(&ListParams::default()).await.unwrap().items.len(), 1);

    // Approve; the webhook answers slowly, and the controller Pod is deleted while the packaging Pod waits.
    run(cluster
        .kubectl()
        .args(["drift", "approve", &event, "-n", &ns, "--reason", "crash test"]));
    wait_for("a running packaging Pod", Duration::from_secs(90), || async {
        running_pod_of_component(cluster, &ns, "retrain-package").await
    })
    .await;
    restart_controller(cluster).await;
    let done = wait_phase(&events, &event, &[Phase::Actioned, Phase::RetrainingFailed]).await;
    assert_eq!(event_phase(&done), Some(Phase::Actioned), "{done:?}");
    let approval = done.spec.approval.as_ref().expect("the approval is kept");
    assert_eq!(approval.approved_by, "driftwatch-admin");
    assert_eq!(received(&webhook).await.len(), 1, "one delivery");
    assert_eq!(
        jobs_with_component(cluster, &ns, "retrain-package").await.len(),
        1
    );
    assert_eq!(
        pods_of_component(cluster, &ns, "retrain-package").await,
        1,
        "one upload"
    );
    let retraining = done.status.as_ref().and_then(|s| s.retraining.clone()).unwrap();
    let archive = s3
        .object(BUCKET, &format!("batches/{ns}/{event}/batch.tar.gz"))
        .await;
    assert_eq!(Some(sha256_hex(&archive)), retraining.sha256);
    let monitor = monitors.get(MONITOR).await.unwrap();
    let status = monitor.status.unwrap();
    assert!(
        status.history.iter().any(|h| h.check_id == result.check_id),
        "the check stays in the history"
    );
}

// Multi-threaded: the watcher must keep polling while `helm upgrade --wait` blocks this test's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_never_runs_two_controllers_and_uninstall_keeps_crds_and_events() {
    let _alone = SHARED_RELEASE.write().await;
    let cluster = Cluster::shared();
    ensure_release(cluster);
    let ns = cluster.namespace("e2e-upgrade").await;
    let _cleanup = cluster.delete_on_drop(&ns);
    let client = cluster.client().await;
    let qdrant = deploy_testbed(cluster, &ns, "qdrant", &["qdrant"]).await;
    load_example_data(cluster, &qdrant);
    apply_manifest(cluster, &ns, &monitor_manifest(&ns, "* * * * *", None));

    // Watch the controller Pods and the Lease while `helm upgrade` changes a value.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_controllers(cluster.client().await, stop.clone()));
    set_qdrant_delay(&qdrant, 1500).await;
    run(cluster.kubectl().args(["drift", "check", MONITOR, "-n", &ns]));
    let annotation = format!(
        "podAnnotations.e2e/upgraded-at={}",
        jiff::Timestamp::now().as_second()
    );
    let upgraded = tokio::task::spawn_blocking(move || {
        run(cluster.helm().args(release_args("upgrade")).args([
            "--reuse-values",
            "--set-string",
            &annotation,
            "--wait",
            "--timeout",
            "180s",
        ]))
    })
    .await
    .unwrap();
    assert!(upgraded.contains("has been upgraded"), "{upgraded}");
    set_qdrant_delay(&qdrant, 0).await;
    let monitors: Api<DriftMonitor> = Api::namespaced(client.clone(), &ns);
    wait_for("checks after the upgrade", Duration::from_secs(150), || async {
        let monitor = monitors.get(MONITOR).await.map_err(|e| e.to_string())?;
        let history = monitor.status.map(|s| s.history.len()).unwrap_or(0);
        (history >= 2).then_some(()).ok_or(format!("{history} checks"))
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let observed = watcher.await.unwrap();
    eprintln!("controllers during the upgrade: {observed:?}");
    assert_eq!(
        observed.max_running_controllers, 1,
        "two controller Pods ran at once: {observed:?}"
    );
    assert!(
        observed.pods_seen.len() >= 2,
        "the upgrade replaced the Pod: {observed:?}"
    );
    // Each slot ran one Job at most: Job names are unique per slot, so a duplicate would fail on create.
    let checks: Vec<String> = monitors
        .get(MONITOR)
        .await
        .unwrap()
        .status
        .unwrap()
        .history
        .iter()
        .map(|h| h.check_id.clone())
        .collect();
    let unique: BTreeSet<&String> = checks.iter().collect();
    assert_eq!(unique.len(), checks.len(), "{checks:?}");

    // Uninstall keeps the CRDs and what users made with them.
    let event = create_event_by_hand(cluster, &ns).await;
    run(cluster
        .helm()
        .args(["uninstall", RELEASE, "-n", RELEASE_NS, "--wait"]));
    let kept = run(cluster.kubectl().args([
        "get",
        "crd",
        "driftmonitors.driftwatch.dev",
        "driftevents.driftwatch.dev",
        "-o",
        "name",
    ]));
    assert_eq!(kept.lines().count(), 2, "{kept}");
    let events: Api<DriftEvent> = Api::namespaced(client.clone(), &ns);
    assert!(
        events.get(&event).await.is_ok(),
        "the DriftEvent survives uninstall"
    );
    assert!(
        monitors.get(MONITOR).await.is_ok(),
        "the DriftMonitor survives uninstall"
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NS);
    let _ = leases
        .delete("driftwatch-controller", &DeleteParams::default())
        .await;
    // Back to the shared state for the other tests.
    ensure_release(cluster);
}

async fn pods_of_component(cluster: &Cluster, ns: &str, component: &str) -> usize {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, ns);
    pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/component={component}")))
        .await
        .unwrap()
        .items
        .len()
}

async fn jobs_with_component(cluster: &Cluster, ns: &str, component: &str) -> Vec<String> {
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, ns);
    jobs.list(&ListParams::default().labels(&format!("app.kubernetes.io/component={component}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect()
}

async fn jobs_of_monitor(cluster: &Cluster, ns: &str) -> Vec<String> {
    jobs_with_component(cluster, ns, "drift-check").await
}

fn event_phase(event: &DriftEvent) -> Option<Phase> {
    event.status.as_ref().and_then(|s| s.phase)
}

/// One approved event whose webhook answers with `script`: (the event when done, deliveries, packaging Pods).
async fn approve_with_webhook(cluster: &Cluster, script: &str) -> (DriftEvent, usize, usize) {
    let ns = cluster.namespace("e2e-retry").await;
    let _cleanup = cluster.delete_on_drop(&ns);
    let s3 = s3(cluster);
    let webhook_args = ["webhook", "--script", script];
    let (qdrant, webhook) = tokio::join!(
        deploy_testbed(cluster, &ns, "qdrant", &["qdrant"]),
        deploy_testbed(cluster, &ns, "webhook", &webhook_args)
    );
    load_example_data(cluster, &qdrant);
    create_retraining_secrets(cluster, &ns, s3);
    apply_manifest(
        cluster,
        &ns,
        &monitor_manifest(&ns, "0 0 1 1 *", Some(&retraining_spec(&ns, s3))),
    );
    let event = create_event_by_hand(cluster, &ns).await;
    run(cluster
        .kubectl()
        .args(["drift", "approve", &event, "-n", &ns, "--reason", "retry test"]));
    let events: Api<DriftEvent> = Api::namespaced(cluster.client().await, &ns);
    let done = wait_phase(&events, &event, &[Phase::Actioned, Phase::RetrainingFailed]).await;
    // The Job is finished; give a rerun Pod (the bug this guards against) time to show.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let deliveries = received(&webhook).await.len();
    let pods = pods_of_component(cluster, &ns, "retrain-package").await;
    (done, deliveries, pods)
}
