//! Runs the controller in-process against the test control plane and plays the kubelet and the Job
//! controller: creates a check Job's Pod with a termination message and marks the Job Complete or Failed.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use driftwatch::{
    api::v1alpha1::{DataSource, DriftMonitor, Method, SampleCounts, SamplingMethod, TimeWindow},
    controller::{self, Config, Handles, JobSettings, LeaderElection, ManualClock},
    job::result::{CheckOutcome, CheckReport, ReportWindows, ScoreReport, encode_check_report},
    metrics::Metrics,
};
use jiff::Timestamp;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::{sync::oneshot, task::JoinHandle};

pub const IMAGE: &str = "registry.example/driftwatch:test";

/// A controller running in this process.
pub struct Running {
    pub handles: Handles,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<driftwatch::error::Result<()>>>,
}

impl Running {
    /// Stops the controller gracefully and waits for it.
    pub async fn stop(mut self) -> driftwatch::error::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("controller task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a controller watching `namespace`, reading time from `clock`.
pub async fn start(
    client: Client,
    namespace: &str,
    clock: Arc<ManualClock>,
    leader_election: Option<LeaderElection>,
) -> Running {
    let metrics = Arc::new(Metrics::new("video_ai").expect("metrics"));
    let handles = Handles::new();
    let config = Config {
        namespaces: vec![namespace.to_string()],
        jobs: JobSettings::new(IMAGE),
        metrics: metrics.clone(),
        clock,
        http_addr: Some("127.0.0.1:0".parse().expect("addr")),
        http: Default::default(),
        leader_election,
        instance: None,
        concurrency: 8,
        api: None,
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(controller::run_with(
        client,
        config,
        handles.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    Running {
        handles,
        metrics,
        stop: Some(stop_tx),
        task: Some(task),
    }
}

/// The context a reconcile runs with, for calling a reconcile directly (e.g. with a stale object).
pub fn context(client: Client, clock: Arc<ManualClock>) -> Arc<controller::Context> {
    let recorder = kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: controller::CONTROLLER_NAME.to_string(),
            instance: Some("test".to_string()),
        },
    );
    Arc::new(controller::Context {
        client,
        recorder,
        metrics: Arc::new(Metrics::new("video_ai").expect("metrics")),
        clock,
        jobs: JobSettings::new(IMAGE),
    })
}

/// Polls `probe` until it returns `Some`, failing the test after a generous timeout.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Lets the controller settle: waits long enough for in-flight reconciles to finish.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

pub fn monitor_manifest(name: &str, schedule: &str) -> DriftMonitor {
    serde_json::from_value(json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "source": {"qdrant": {
                "url": "http://qdrant:6334",
                "collection": "video_frames",
                "apiKeySecretRef": {"name": "qdrant", "key": "api-key"}
            }},
            "windows": {"reference": {"duration": "7d", "offset": "24h"}, "comparison": {"duration": "24h"}},
            "detectors": [{"method": "kl_divergence", "source": "embeddings", "threshold": 0.1}],
            "events": {"cooldown": "24h"}
        }
    }))
    .expect("monitor manifest")
}

pub async fn create_monitor(client: &Client, ns: &str, monitor: &DriftMonitor) -> DriftMonitor {
    Api::<DriftMonitor>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), monitor)
        .await
        .expect("create monitor")
}

pub async fn get_monitor(client: &Client, ns: &str, name: &str) -> DriftMonitor {
    Api::<DriftMonitor>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("get monitor")
}

pub async fn jobs(client: &Client, ns: &str) -> Vec<Job> {
    let mut jobs = Api::<Job>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list jobs")
        .items;
    jobs.sort_by_key(|j| j.name_any());
    jobs
}

/// Waits until exactly `n` Jobs exist and returns them.
pub async fn wait_for_jobs(client: &Client, ns: &str, n: usize) -> Vec<Job> {
    eventually(&format!("{n} check Jobs"), || async {
        let jobs = jobs(client, ns).await;
        (jobs.len() == n).then_some(jobs)
    })
    .await
}

pub fn outcome(score: f64, drifted: bool) -> CheckOutcome {
    let window = |start: &str, end: &str| TimeWindow {
        start: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            start.parse().expect("ts"),
        )),
        end: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            end.parse().expect("ts"),
        )),
        collection: None,
    };
    CheckOutcome {
        windows: ReportWindows {
            reference: window("2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z"),
            comparison: window("2026-01-08T00:00:00Z", "2026-01-09T00:00:00Z"),
        },
        samples: SampleCounts {
            reference: 2000,
            comparison: 500,
            reference_available: Some(2000),
            comparison_available: Some(500),
            reference_sampling: Some(SamplingMethod::All),
            comparison_sampling: Some(SamplingMethod::Random),
            reference_read: Some(2000),
            comparison_read: Some(500),
        },
        scores: vec![ScoreReport {
            method: Method::KlDivergence,
            source: DataSource::Embeddings,
            score,
            threshold: Some(0.1),
            p_value: None,
            adjusted_p_value: None,
            drifted,
            n_reference: 2000,
            n_comparison: 500,
            seconds: 1.5,
        }],
        drift_detected: drifted,
        combined_p_value: None,
        alpha: None,
        duration_seconds: 3.0,
        skipped: None,
        summary: None,
        explanation: None,
    }
}

/// Plays kubelet + Job controller: a Pod with the report as termination message, then the Job's final
/// condition.
pub async fn finish_job(client: &Client, ns: &str, job: &str, report: &CheckReport, succeeded: bool) {
    finish_job_with_message(client, ns, job, &encode_check_report(report), succeeded).await;
}

/// [`finish_job`] with any termination message (e.g. what a real Job process wrote).
pub async fn finish_job_with_message(client: &Client, ns: &str, job: &str, message: &str, succeeded: bool) {
    let uid = Api::<Job>::namespaced(client.clone(), ns)
        .get(job)
        .await
        .expect("get job")
        .metadata
        .uid
        .expect("job uid");
    create_pod(
        client,
        ns,
        job,
        &format!("{job}-pod"),
        Some(&uid),
        message,
        succeeded,
    )
    .await;
    mark_job(client, ns, job, succeeded).await;
}

/// A terminated Pod with the Job's labels and `message` as termination message; owned by the Job (as
/// the Job controller makes them) when `owner_uid` is given, else a look-alike anyone could create.
pub async fn create_pod(
    client: &Client,
    ns: &str,
    job: &str,
    pod_name: &str,
    owner_uid: Option<&str>,
    message: &str,
    succeeded: bool,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let job_uid = match owner_uid {
        Some(uid) => uid.to_string(),
        None => Api::<Job>::namespaced(client.clone(), ns)
            .get_opt(job)
            .await
            .expect("get job")
            .and_then(|j| j.metadata.uid)
            .unwrap_or_default(),
    };
    let mut metadata = json!({"name": pod_name, "labels": {
        "job-name": job, "batch.kubernetes.io/job-name": job,
        "controller-uid": job_uid, "batch.kubernetes.io/controller-uid": job_uid
    }});
    if let Some(uid) = owner_uid {
        metadata["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": job,
            "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": metadata,
        "spec": {"restartPolicy": "Never", "containers": [{"name": "check", "image": IMAGE}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let now = Timestamp::now().to_string();
    let exit_code = if succeeded { 0 } else { 1 };
    let status = json!({"status": {
        "phase": if succeeded { "Succeeded" } else { "Failed" },
        "containerStatuses": [{
            "name": "check", "image": IMAGE, "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {
                "exitCode": exit_code, "reason": if succeeded { "Completed" } else { "Error" },
                "message": message, "startedAt": now, "finishedAt": now
            }}
        }]
    }});
    pods.patch_status(pod_name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

/// Sets the Job's final status as the Job controller would.
pub async fn mark_job(client: &Client, ns: &str, job: &str, succeeded: bool) {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let now = Timestamp::now().to_string();
    let condition = |type_: &str, reason: &str| {
        json!({"type": type_, "status": "True", "reason": reason, "message": reason,
               "lastProbeTime": now, "lastTransitionTime": now})
    };
    let status = if succeeded {
        json!({"status": {
            "startTime": now, "completionTime": now, "succeeded": 1, "active": 0,
            "conditions": [condition("SuccessCriteriaMet", "CompletionsReached"), condition("Complete", "CompletionsReached")]
        }})
    } else {
        json!({"status": {
            "startTime": now, "failed": 1, "active": 0,
            "conditions": [condition("FailureTarget", "BackoffLimitExceeded"), condition("Failed", "BackoffLimitExceeded")]
        }})
    };
    jobs.patch_status(job, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("job status");
}

/// A Timestamp `secs` seconds after `t`.
pub fn after(t: Timestamp, secs: i64) -> Timestamp {
    t + jiff::SignedDuration::from_secs(secs)
}

/// The monitor's creation time.
pub fn created(monitor: &DriftMonitor) -> Timestamp {
    monitor
        .metadata
        .creation_timestamp
        .as_ref()
        .expect("creation timestamp")
        .0
}

/// Start of the next hour after `t` (for hourly schedules).
pub fn next_hour(t: Timestamp) -> Timestamp {
    let s = t.as_second();
    Timestamp::from_second(s - s.rem_euclid(3600) + 3600).expect("ts")
}

/// Kubernetes Events about `name` in `ns` with `reason`.
pub async fn k8s_events(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
) -> Vec<k8s_openapi::api::events::v1::Event> {
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .collect()
}
