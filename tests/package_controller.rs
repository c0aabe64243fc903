//! Approval → packaging on a real API server, end to end: the controller creates exactly one packaging Job
//! for an approved DriftEvent; the test plays the kubelet by running the real `driftwatch package` process
//! with the Job's own arguments and Secret-backed env (Qdrant gRPC test server → moto S3 → axum webhook
//! receiver) and putting what it wrote to the termination log into the Pod; the controller records Actioned
//! or RetrainingFailed, emits Kubernetes Events and counts the outcome. Also: Ignore, the decision being
//! final, and an approval made while the controller is down.

#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/controller_harness.rs"]
mod harness;
#[path = "support/qdrant_server.rs"]
mod qdrant_server;
#[path = "support/s3_server.rs"]
mod s3_server;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::{collections::BTreeMap, sync::Arc};

use control_plane::ControlPlane;
use driftwatch::{
    api::v1alpha1::{DriftEvent, Phase},
    controller::ManualClock,
    job::result::parse_package_report,
};
use harness::*;
use jiff::Timestamp;
use k8s_openapi::{ByteString, api::batch::v1::Job, api::core::v1::Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use qdrant_server::{TestPoint, TestQdrant, VectorShape};
use s3_server::S3Server;
use serde_json::json;
use sha2::Digest;
use webhook_receiver::{Receiver, Reply};

const BUCKET: &str = "controller-batches";

async fn setup(ns: &str, client: &Client, qdrant: &TestQdrant, webhook: &str) {
    qdrant.create_collection("frames", VectorShape::Single(4));
    qdrant.insert(
        "frames",
        (0..60u64).map(|i| {
            TestPoint::new(
                i,
                vec![i as f32, 1.0, 2.0, 3.0],
                json!({"timestamp": format!("2026-11-25T{:02}:{:02}:00Z", i % 24, i % 60)}),
            )
        }),
    );
    let s3 = S3Server::shared();
    s3.create_bucket(BUCKET).await;
    let env: BTreeMap<String, String> = s3.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = |name: &str, data: BTreeMap<String, String>| Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    };
    let s3_keys = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .into_iter()
        .map(|k| (k.to_string(), env[k].clone()))
        .collect();
    secrets
        .create(&PostParams::default(), &secret("s3", s3_keys))
        .await
        .unwrap();
    let hook = BTreeMap::from([
        ("url".to_string(), webhook.to_string()),
        ("hmac".to_string(), "k3y".to_string()),
    ]);
    secrets
        .create(&PostParams::default(), &secret("hook", hook))
        .await
        .unwrap();
    let mut monitor = monitor_manifest("frames", "0 0 1 1 *");
    let mut spec = serde_json::to_value(&monitor.spec).unwrap();
    spec["source"]["qdrant"] = json!({"url": qdrant.url, "collection": "frames"});
    spec["retraining"] = json!({
        "s3": {"bucket": BUCKET, "prefix": "batches/", "endpoint": s3.endpoint(), "region": "us-east-1",
               "credentialsSecretRef": {"name": "s3"}},
        "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}, "hmacSecretRef": {"name": "hook", "key": "hmac"}},
        "sampleSize": 25
    });
    monitor.spec = serde_json::from_value(spec).unwrap();
    create_monitor(client, ns, &monitor).await;
}

fn event_manifest(name: &str) -> DriftEvent {
    serde_json::from_value(json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftEvent",
        "metadata": {"name": name, "labels": {"driftwatch.dev/monitor": "frames"}},
        "spec": {
            "monitorRef": {"name": "frames"},
            "detectedAt": "2026-11-26T00:00:00Z",
            "driftScore": 0.4,
            "scores": [{"method": "mmd", "source": "embeddings", "score": 0.4, "threshold": 0.05, "drifted": true}],
            "referenceWindow": {"start": "2026-11-18T00:00:00Z", "end": "2026-11-25T00:00:00Z"},
            "comparisonWindow": {"start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"}
        }
    }))
    .unwrap()
}

async fn create_event(client: &Client, ns: &str, name: &str) {
    Api::<DriftEvent>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &event_manifest(name))
        .await
        .unwrap();
}

async fn get_event(client: &Client, ns: &str, name: &str) -> DriftEvent {
    Api::<DriftEvent>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

async fn wait_phase(client: &Client, ns: &str, name: &str, phase: Phase) -> DriftEvent {
    eventually(&format!("{name} in {phase:?}"), || async {
        let event = get_event(client, ns, name).await;
        (event.status.as_ref().and_then(|s| s.phase) == Some(phase)).then_some(event)
    })
    .await
}

async fn decide(client: &Client, ns: &str, name: &str, decision: &str) -> Result<DriftEvent, kube::Error> {
    Api::<DriftEvent>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"decision": decision, "approvedBy": "alice", "reason": "new camera firmware"}}})),
        )
        .await
}

async fn package_jobs(client: &Client, ns: &str) -> Vec<Job> {
    jobs(client, ns)
        .await
        .into_iter()
        .filter(|j| {
            j.labels().get("app.kubernetes.io/component").map(String::as_str) == Some("retrain-package")
        })
        .collect()
}

/// Plays the kubelet: runs the Job's container command as a process with its args and its env resolved
/// from the Secrets (as the kubelet would), then records the Pod's termination message and the Job's end.
async fn run_job_as_kubelet(client: &Client, ns: &str, job: &Job) -> (bool, String) {
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let container = &pod.containers[0];
    assert_eq!(pod.automount_service_account_token, Some(false));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let mut args = container.args.clone().unwrap();
    for (flag, value) in [
        ("--work-dir", dir.path().to_path_buf()),
        ("--termination-log", log.clone()),
    ] {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value.display().to_string();
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    cmd.args(&args[..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.args(["--webhook-backoff", "50ms"]);
    for var in container.env.clone().unwrap_or_default() {
        if let Some(value) = var.value {
            cmd.env(var.name, value);
            continue;
        }
        let selector = var.value_from.unwrap().secret_key_ref.unwrap();
        let secret = secrets.get(&selector.name).await.unwrap();
        let value = secret.data.unwrap()[&selector.key].0.clone();
        cmd.env(var.name, String::from_utf8(value).unwrap());
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let message = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !message.is_empty(),
        "no termination message; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let succeeded = out.status.success();
    finish_job_with_message(client, ns, &job.name_any(), &message, succeeded).await;
    (succeeded, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_packages_once_to_s3_triggers_the_webhook_and_records_actioned() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("package").await;
    let qdrant = TestQdrant::start().await;
    let receiver = Receiver::start(vec![Reply::Status(503), Reply::Ok(json!({"job_id": "rt-42"}))]).await;
    setup(&ns, &client, &qdrant, &receiver.url).await;
    create_event(&client, &ns, "frames-202611260000").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    wait_phase(&client, &ns, "frames-202611260000", Phase::NeedsReview).await;
    assert!(
        package_jobs(&client, &ns).await.is_empty(),
        "no Job before a decision"
    );

    decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap();
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::Packaging).await;
    let jobs = eventually("one packaging Job", || async {
        let jobs = package_jobs(&client, &ns).await;
        (!jobs.is_empty()).then_some(jobs)
    })
    .await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].name_any(), "frames-202611260000-package");
    // The API server accepted default resources and a size-limited work volume.
    let pod = jobs[0].spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let limits = pod.containers[0]
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    assert!(limits.contains_key("memory"), "{limits:?}");
    let work = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "work")
        .unwrap();
    assert!(work.empty_dir.as_ref().unwrap().size_limit.is_some());
    assert_eq!(
        event
            .status
            .as_ref()
            .unwrap()
            .retraining
            .as_ref()
            .unwrap()
            .job_name
            .as_deref(),
        Some("frames-202611260000-package")
    );
    let owner = &jobs[0].owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("DriftEvent", event.uid().unwrap().as_str())
    );

    // A controller restart during Packaging creates no second Job.
    running.stop().await.unwrap();
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    settle().await;
    assert_eq!(package_jobs(&client, &ns).await.len(), 1);

    let (succeeded, message) = run_job_as_kubelet(&client, &ns, &jobs[0]).await;
    assert!(succeeded, "{message}");
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::Actioned).await;
    let status = event.status.unwrap();
    let retraining = status.retraining.unwrap();
    let key = format!("batches/{ns}/frames-202611260000/batch.tar.gz");
    assert_eq!(
        retraining.s3_uri.as_deref(),
        Some(format!("s3://{BUCKET}/{key}").as_str())
    );
    assert_eq!(retraining.retraining_job_id.as_deref(), Some("rt-42"));
    assert_eq!(retraining.attempts, Some(2));
    assert!(retraining.started_at.is_some() && retraining.finished_at.is_some());
    let bytes = S3Server::shared().object(BUCKET, &key).await;
    assert_eq!(
        retraining.sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str())
    );
    let phases: Vec<Phase> = status.transitions.iter().map(|t| t.phase).collect();
    assert_eq!(phases, [Phase::NeedsReview, Phase::Packaging, Phase::Actioned]);
    assert_eq!(status.transitions[1].actor.as_deref(), Some("alice"));

    let calls = receiver.received();
    assert_eq!(calls.len(), 2, "one 503, then accepted");
    let body: serde_json::Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert_eq!(body["event_id"], format!("{ns}/frames-202611260000"));
    assert_eq!(body["approved_by"], "alice");
    assert_eq!(body["sample_size"], 25);
    assert_eq!(
        calls[1]
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok()),
        event.metadata.uid.as_deref()
    );
    let report = parse_package_report(&message).unwrap();
    assert_eq!(report.result.unwrap().points, 25);

    let triggered = eventually("a RetrainingTriggered event", || async {
        let events = k8s_events(&client, &ns, "frames-202611260000", "RetrainingTriggered").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert!(triggered[0].note.as_deref().unwrap_or_default().contains("rt-42"));
    assert_eq!(
        k8s_events(&client, &ns, "frames-202611260000", "PackagingStarted")
            .await
            .len(),
        1
    );
    let metrics = running.metrics.render();
    assert!(
        metrics.contains(&format!(
            "video_ai_retraining_triggered_total{{monitor=\"frames\",namespace=\"{ns}\"}} 1"
        )),
        "{metrics}"
    );

    // The decision is final.
    let err = decide(&client, &ns, "frames-202611260000", "Ignore")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("approval"), "{err}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_webhook_ends_in_retraining_failed_and_ignore_in_ignored() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("package-fail").await;
    let qdrant = TestQdrant::start().await;
    let receiver = Receiver::start(vec![Reply::Status(400)]).await;
    setup(&ns, &client, &qdrant, &receiver.url).await;
    create_event(&client, &ns, "frames-202611260000").await;
    create_event(&client, &ns, "frames-202611250000").await;
    // Approved while no controller runs: acted on once after start.
    decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    wait_phase(&client, &ns, "frames-202611260000", Phase::Packaging).await;
    let jobs = eventually("the packaging Job", || async {
        let jobs = package_jobs(&client, &ns).await;
        (!jobs.is_empty()).then_some(jobs)
    })
    .await;
    assert_eq!(jobs.len(), 1);
    let (succeeded, message) = run_job_as_kubelet(&client, &ns, &jobs[0]).await;
    assert!(!succeeded, "{message}");
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::RetrainingFailed).await;
    let retraining = event.status.unwrap().retraining.unwrap();
    let error = retraining.last_error.unwrap();
    assert!(error.contains("400"), "{error}");
    assert_eq!(receiver.received().len(), 1, "a 400 is not retried");
    let warnings = eventually("a RetrainingFailed warning", || async {
        let events = k8s_events(&client, &ns, "frames-202611260000", "RetrainingFailed").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    let metrics = running.metrics.render();
    assert!(
        metrics.contains(&format!(
            "video_ai_retraining_failed_total{{monitor=\"frames\",namespace=\"{ns}\"}} 1"
        )),
        "{metrics}"
    );

    decide(&client, &ns, "frames-202611250000", "Ignore")
        .await
        .unwrap();
    let ignored = wait_phase(&client, &ns, "frames-202611250000", Phase::Ignored).await;
    assert_eq!(
        ignored
            .status
            .unwrap()
            .transitions
            .last()
            .unwrap()
            .actor
            .as_deref(),
        Some("alice")
    );
    settle().await;
    assert_eq!(package_jobs(&client, &ns).await.len(), 1, "Ignore starts no Job");
    running.stop().await.unwrap();
}

fn arg_of<'a>(job: &'a Job, flag: &str) -> Option<&'a str> {
    let args = job.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .args
        .as_ref()?;
    let i = args.iter().position(|a| a == &format!("--{flag}"))?;
    args.get(i + 1).map(String::as_str)
}

fn env_secret(job: &Job, var: &str) -> Option<String> {
    let container = &job.spec.as_ref()?.template.spec.as_ref()?.containers[0];
    let env = container.env.as_ref()?.iter().find(|e| e.name == var)?;
    Some(env.value_from.as_ref()?.secret_key_ref.as_ref()?.name.clone())
}

/// Deletes the packaging Job and returns the one the controller creates in its place.
async fn recreated(client: &Client, ns: &str, old: &Job) -> Job {
    // Background: no garbage collector runs here to finish an orphaning delete.
    let params = kube::api::DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Background),
        ..Default::default()
    };
    Api::<Job>::namespaced(client.clone(), ns)
        .delete(&old.name_any(), &params)
        .await
        .unwrap();
    eventually("the packaging Job created again", || async {
        let jobs = package_jobs(client, ns).await;
        jobs.into_iter().find(|j| j.uid() != old.uid())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_hands_off_to_the_target_frozen_at_approval_not_to_the_monitors_later_spec() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("package-frozen").await;
    let qdrant = TestQdrant::start().await;
    setup(&ns, &client, &qdrant, "http://127.0.0.1:9/hook").await;
    create_event(&client, &ns, "frames-202611260000").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::NeedsReview).await;
    let shown = event.status.unwrap().retraining_target.unwrap();
    assert_eq!(shown.summary, format!("s3://{BUCKET}/batches/"));
    assert_eq!(shown.approved_at, None);

    decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap();
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::Packaging).await;
    assert!(
        event
            .status
            .unwrap()
            .retraining_target
            .unwrap()
            .approved_at
            .is_some()
    );
    let first = eventually("the packaging Job", || async {
        package_jobs(&client, &ns).await.into_iter().next()
    })
    .await;

    // The monitor's retraining settings change after the approval ...
    Api::<driftwatch::api::v1alpha1::DriftMonitor>::namespaced(client.clone(), &ns)
        .patch(
            "frames",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"retraining": {
                "s3": {"bucket": "elsewhere", "prefix": "exfil/"},
                "webhook": {"urlSecretRef": {"name": "other-hook", "key": "url"}},
                "sampleSize": 3
            }}})),
        )
        .await
        .unwrap();
    settle().await;
    // ... and a Job created again still packages what was approved.
    let second = recreated(&client, &ns, &first).await;
    for job in [&first, &second] {
        assert_eq!(arg_of(job, "bucket"), Some(BUCKET));
        assert_eq!(arg_of(job, "prefix"), Some("batches/"));
        assert_eq!(arg_of(job, "sample-size"), Some("25"));
        assert_eq!(env_secret(job, "DRIFTWATCH_WEBHOOK_URL").as_deref(), Some("hook"));
    }
    assert_eq!(arg_of(&first, "created-at"), arg_of(&second, "created-at"));
    let target = get_event(&client, &ns, "frames-202611260000")
        .await
        .status
        .unwrap()
        .retraining_target
        .unwrap();
    assert_eq!(target.summary, format!("s3://{BUCKET}/batches/"));
    running.stop().await.unwrap();
}

/// A ValidatingAdmissionPolicy refusing status writes of DriftEvents labelled `hold-status`: lets a test
/// make the controller's status write fail after it acted, as a crash or a conflict would.
async fn hold_status_writes(client: &Client, ns: &str) {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": format!("hold-status-{ns}")},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [{"apiGroups": ["driftwatch.dev"], "apiVersions": ["*"],
                    "operations": ["UPDATE"], "resources": ["driftevents/status"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
            },
            "validations": [{
                "expression": "!has(object.metadata.labels) || !('hold-status' in object.metadata.labels)",
                "message": "status writes are held by the test"
            }]
        }
    }))
    .unwrap();
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("hold-status-{ns}")},
        "spec": {"policyName": format!("hold-status-{ns}"), "validationActions": ["Deny"]}
    }))
    .unwrap();
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // Enforced asynchronously: probe until a held status write is refused.
    let events: Api<DriftEvent> = Api::namespaced(client.clone(), ns);
    let mut probe = event_manifest("probe");
    probe
        .metadata
        .labels
        .get_or_insert_default()
        .insert("hold-status".into(), "1".into());
    events.create(&PostParams::default(), &probe).await.unwrap();
    eventually("status writes held", || async {
        let written = events
            .patch_status(
                "probe",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"occurrences": 1}})),
            )
            .await;
        written.is_err().then_some(())
    })
    .await;
    events.delete("probe", &Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_created_again_after_a_failed_status_write_has_the_same_created_at() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("package-restart").await;
    let qdrant = TestQdrant::start().await;
    setup(&ns, &client, &qdrant, "http://127.0.0.1:9/hook").await;
    hold_status_writes(&client, &ns).await;
    let mut event = event_manifest("frames-202611260000");
    event
        .metadata
        .labels
        .get_or_insert_default()
        .insert("hold-status".into(), "1".into());
    Api::<DriftEvent>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap();
    let t0 = Timestamp::now();
    let clock = Arc::new(ManualClock::new(t0));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    // The controller acts, but its status writes fail; it retries later with a later clock.
    settle().await;
    clock.set(after(t0, 3600));
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    clock.set(after(t0, 7200));
    Api::<DriftEvent>::namespaced(client.clone(), &ns)
        .patch(
            "frames-202611260000",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"hold-status": null}}})),
        )
        .await
        .unwrap();
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::Packaging).await;
    let started = event.status.unwrap().retraining.unwrap().started_at.unwrap().0;
    let first = eventually("the packaging Job", || async {
        package_jobs(&client, &ns).await.into_iter().next()
    })
    .await;
    let second = recreated(&client, &ns, &first).await;
    let started = started.to_string();
    assert_eq!(
        arg_of(&first, "created-at"),
        Some(started.as_str()),
        "the first Job"
    );
    assert_eq!(
        arg_of(&second, "created-at"),
        Some(started.as_str()),
        "the Job created again"
    );
    running.stop().await.unwrap();
}

fn forged_success(ns: &str, event: &str) -> String {
    driftwatch::job::result::encode_package_report(&driftwatch::job::result::PackageReport::success(
        format!("{ns}/{event}"),
        driftwatch::job::result::PackageOutcome {
            s3_uri: Some("s3://attacker/batch.tar.gz".into()),
            sha256: Some("00".repeat(32)),
            points: 25,
            retraining_job_id: Some("forged".into()),
            attempts: 1,
            ..Default::default()
        },
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_the_packaging_name_that_the_event_does_not_own_never_makes_it_actioned() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("package-squat").await;
    let qdrant = TestQdrant::start().await;
    setup(&ns, &client, &qdrant, "http://127.0.0.1:9/hook").await;
    create_event(&client, &ns, "frames-202611260000").await;
    // Someone who may create Jobs and Pods prepares a Job of the packaging Job's name that "succeeded".
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "frames-202611260000-package"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "package", "image": IMAGE}]}}}
    }))
    .unwrap();
    Api::<Job>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
    finish_job_with_message(
        &client,
        &ns,
        "frames-202611260000-package",
        &forged_success(&ns, "frames-202611260000"),
        true,
    )
    .await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    wait_phase(&client, &ns, "frames-202611260000", Phase::NeedsReview).await;
    decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap();
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::RetrainingFailed).await;
    let error = event.status.unwrap().retraining.unwrap().last_error.unwrap();
    assert!(error.starts_with("PackagingJobNotOwned: "), "{error}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_the_packaging_job_does_not_own_is_not_its_result() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("package-forged-pod").await;
    let qdrant = TestQdrant::start().await;
    setup(&ns, &client, &qdrant, "http://127.0.0.1:9/hook").await;
    create_event(&client, &ns, "frames-202611260000").await;
    decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let job = eventually("the packaging Job", || async {
        package_jobs(&client, &ns).await.into_iter().next()
    })
    .await;
    // A look-alike Pod: the Job's labels (job-name, controller-uid) but no owner reference.
    create_pod(
        &client,
        &ns,
        &job.name_any(),
        "look-alike",
        None,
        &forged_success(&ns, "frames-202611260000"),
        true,
    )
    .await;
    mark_job(&client, &ns, &job.name_any(), true).await;
    let event = wait_phase(&client, &ns, "frames-202611260000", Phase::RetrainingFailed).await;
    let error = event.status.unwrap().retraining.unwrap().last_error.unwrap();
    assert!(error.starts_with("ResultMissing: "), "{error}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_monitor_has_no_retraining_shows_nothing_to_trigger_and_refuses_approval() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("package-nothing").await;
    create_monitor(&client, &ns, &monitor_manifest("frames", "0 0 1 1 *")).await;
    create_event(&client, &ns, "frames-202611260000").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let event = eventually("nothing to trigger recorded", || async {
        let event = get_event(&client, &ns, "frames-202611260000").await;
        event.nothing_to_trigger().map(|_| event)
    })
    .await;
    let status = event.status.unwrap();
    assert_eq!(status.phase, Some(Phase::NeedsReview));
    let decided = status.conditions.iter().find(|c| c.type_ == "Decided").unwrap();
    assert!(
        decided.message.starts_with("nothing to trigger"),
        "{}",
        decided.message
    );

    // kubectl get shows it in the TARGET column.
    let request = http::Request::get(format!(
        "/apis/driftwatch.dev/v1alpha1/namespaces/{ns}/driftevents"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .unwrap();
    let table: serde_json::Value = client.request(request).await.unwrap();
    let target = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["name"] == "Target")
        .expect("a Target column");
    assert_eq!(table["rows"][0]["cells"][target], "None");

    // The API server refuses the approval with the reason.
    let err = decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing to trigger"), "{err}");

    // Once the monitor has spec.retraining, the event shows the destination and can be approved.
    Api::<driftwatch::api::v1alpha1::DriftMonitor>::namespaced(client.clone(), &ns)
        .patch(
            "frames",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"retraining": {
                "s3": {"bucket": BUCKET, "prefix": "batches/"},
                "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}}
            }}})),
        )
        .await
        .unwrap();
    eventually("the destination recorded", || async {
        let event = get_event(&client, &ns, "frames-202611260000").await;
        let target = event.status?.retraining_target?;
        (target.summary == format!("s3://{BUCKET}/batches/")).then_some(())
    })
    .await;
    decide(&client, &ns, "frames-202611260000", "Approve")
        .await
        .unwrap();
    wait_phase(&client, &ns, "frames-202611260000", Phase::Packaging).await;
    running.stop().await.unwrap();
}
