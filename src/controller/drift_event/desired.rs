//! The retrain-packaging Job of an approved DriftEvent (docs/reference/jobs.md). Pure: built from the event,
//! the retraining target its approval froze (`status.retrainingTarget`: destination, webhook Secret
//! references, sample size, source), the packaging start time recorded with it, the monitor's Pod settings
//! and the controller settings; no I/O.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{
        batch::v1::{
            Job, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
            PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
        },
        core::v1::{Container, EmptyDirVolumeSource, Volume, VolumeMount},
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::{Resource, api::ObjectMeta};

use super::naming::packaging_job_name;
use crate::job::package::FINAL_FAILURE_EXIT_CODE;
use crate::{
    api::{
        parse_duration,
        v1alpha1::{ArchiveFormat, Decision, DriftEvent, JobTemplateSpec, RetrainingSpec, RetrainingTarget},
    },
    controller::drift_monitor::desired::{
        JobSettings, QDRANT_API_KEY_ENV, TERMINATION_LOG, controller_job, driftwatch_container, job_pod_spec,
        json, labels, monitor_label, qdrant_source_args, rfc3339, sampling_args, secret_env,
    },
};

/// `app.kubernetes.io/component` of packaging Jobs (the DriftEvent controller watches these).
pub const PACKAGE_COMPONENT: &str = "retrain-package";
/// Name of the packaging Job's container (its `podFailurePolicy` names it).
pub const PACKAGE_CONTAINER: &str = "package";
/// Where the Job spools points and builds the archive (an emptyDir: the root filesystem is read-only).
pub const WORK_DIR: &str = "/work";
/// Default `activeDeadlineSeconds` of a packaging Job: sampling, uploading and the webhook's retries.
pub const DEFAULT_ACTIVE_DEADLINE_SECONDS: i64 = 3600;
/// Pod retries of a packaging Job. A retried Pod rebuilds the identical archive and reuses the upload.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 2;
/// Keys of the S3 credentials Secret (`spec.retraining.s3.credentialsSecretRef`).
pub const S3_CREDENTIAL_KEYS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
/// Work folder bytes allowed per sampled point: its line in points.jsonl (the vector as JSON text, about
/// 13 bytes a dimension, plus the payload) and its row in vectors.npy (4 bytes a dimension) — room for
/// 4096 dimensions and a few KiB of payload.
pub const WORK_BYTES_PER_POINT: u64 = 128 * 1024;
/// Work folder bytes beyond the points and objects (manifest, archive overhead).
pub const WORK_HEADROOM_BYTES: u64 = 64 * 1024 * 1024;
/// `includeObjects.maxTotalBytes` when unset (the `driftwatch package` default).
pub const DEFAULT_MAX_TOTAL_OBJECT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Why an approved event cannot be packaged; recorded on the event as `RetrainingFailed`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PackagingError {
    #[error("the event has no {0}")]
    MissingMetadata(&'static str),
    #[error("the event is not approved")]
    NotApproved,
    #[error("nothing to trigger: {0}")]
    NothingToTrigger(String),
    #[error("the comparison window cannot be derived: {0}")]
    Window(String),
    #[error("cannot encode {0} as JSON")]
    Encode(&'static str),
}

/// The labels of an event's packaging Job and its Pod.
pub fn package_labels(monitor: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_string(), labels::APP.to_string()),
        (labels::COMPONENT.to_string(), PACKAGE_COMPONENT.to_string()),
        (
            labels::MANAGED_BY.to_string(),
            crate::controller::CONTROLLER_NAME.to_string(),
        ),
        (labels::MONITOR.to_string(), monitor_label(monitor)),
    ])
}

/// The comparison window to package: the event's own, or (for events raised from alerts, which carry only
/// the detection time) the monitor's comparison duration ending at the detection time.
fn comparison_window(
    event: &DriftEvent,
    target: &RetrainingTarget,
) -> Result<(Timestamp, Timestamp), PackagingError> {
    let window = &event.spec.comparison_window;
    let end = window.end.as_ref().map_or(event.spec.detected_at.0, |t| t.0);
    let start = match &window.start {
        Some(start) => start.0,
        None => {
            let duration = target
                .comparison_duration
                .as_deref()
                .ok_or_else(|| PackagingError::Window("no comparison duration was recorded".into()))?;
            let duration = parse_duration(duration).map_err(|e| PackagingError::Window(e.to_string()))?;
            let duration =
                SignedDuration::try_from(duration).map_err(|e| PackagingError::Window(e.to_string()))?;
            end.checked_sub(duration)
                .map_err(|e| PackagingError::Window(e.to_string()))?
        }
    };
    if start >= end {
        return Err(PackagingError::Window(format!(
            "start {start} is not before end {end}"
        )));
    }
    Ok((start, end))
}

/// The `driftwatch package` arguments for an approved event and the target its approval froze.
pub fn package_args(
    event: &DriftEvent,
    target: &RetrainingTarget,
    created_at: Timestamp,
) -> Result<Vec<String>, PackagingError> {
    let approval = event
        .spec
        .approval
        .as_ref()
        .filter(|a| a.decision == Decision::Approve)
        .ok_or(PackagingError::NotApproved)?;
    let name = event
        .metadata
        .name
        .as_deref()
        .ok_or(PackagingError::MissingMetadata("name"))?;
    let namespace = event
        .metadata
        .namespace
        .as_deref()
        .ok_or(PackagingError::MissingMetadata("namespace"))?;
    let monitor_name = &event.spec.monitor_ref.name;
    let nothing = || {
        PackagingError::NothingToTrigger(
            target
                .reason
                .clone()
                .unwrap_or_else(|| super::target::no_retraining_reason(monitor_name)),
        )
    };
    let retraining = target.retraining.as_ref().ok_or_else(nothing)?;
    let q = target.source.as_ref().ok_or_else(nothing)?;
    let (start, end) = comparison_window(event, target)?;
    let collection = event
        .spec
        .comparison_window
        .collection
        .as_deref()
        .unwrap_or(&q.collection);
    let mut args: Vec<String> = vec!["package".into()];
    args.extend(
        qdrant_source_args(q, collection).map_err(|_| PackagingError::Encode("source.qdrant.filter"))?,
    );
    let mut flag = |flag: &str, value: String| {
        args.push(format!("--{flag}"));
        args.push(value);
    };
    flag("comparison-start", rfc3339(start));
    flag("comparison-end", rfc3339(end));
    if let Some(t) = &event.spec.reference_window.start {
        flag("reference-start", rfc3339(t.0));
    }
    if let Some(t) = &event.spec.reference_window.end {
        flag("reference-end", rfc3339(t.0));
    }
    flag("sample-size", retraining.sample_size.to_string());
    flag("seed", target.seed.unwrap_or(42).to_string());
    // Targets frozen before the sampling settings were copied package as those releases did: reservoir.
    args.extend(sampling_args(&target.sampling.clone().unwrap_or_default()));
    let mut flag = |flag: &str, value: String| {
        args.push(format!("--{flag}"));
        args.push(value);
    };
    flag("namespace", namespace.to_string());
    flag("event", name.to_string());
    if let Some(uid) = &event.metadata.uid {
        flag("event-uid", uid.clone());
    }
    flag("monitor", monitor_name.clone());
    flag(
        "scores-json",
        json("scores", &event.spec.scores).map_err(|_| PackagingError::Encode("scores"))?,
    );
    flag("approved-by", approval.approved_by.clone());
    if let Some(reason) = approval.reason.as_ref().filter(|r| !r.is_empty()) {
        flag("reason", reason.clone());
    }
    flag("created-at", rfc3339(created_at));
    let s3 = &retraining.s3;
    flag("bucket", s3.bucket.clone());
    if !s3.prefix.is_empty() {
        flag("prefix", s3.prefix.clone());
    }
    if let Some(region) = &s3.region {
        flag("region", region.clone());
    }
    if let Some(endpoint) = &s3.endpoint {
        flag("s3-endpoint", endpoint.clone());
    }
    if let Some(sse) = &s3.server_side_encryption {
        flag("sse", sse.clone());
    }
    let format = match retraining.format {
        ArchiveFormat::TarGz => "tar.gz",
        ArchiveFormat::Zip => "zip",
    };
    flag("format", format.into());
    if let Some(objects) = &retraining.include_objects {
        flag("include-objects-field", objects.payload_field.clone());
        if let Some(max) = &objects.max_object_bytes {
            flag("max-object-bytes", max.clone());
        }
        if let Some(max) = &objects.max_total_bytes {
            flag("max-total-bytes", max.clone());
        }
        for source in &objects.allowed_sources {
            flag("allow-object-source", source.clone());
        }
        if objects.allow_private_addresses {
            flag("allow-private-object-addresses", "true".into());
        }
    }
    if let Some(timeout) = &retraining.webhook.timeout {
        flag("webhook-timeout", timeout.clone());
    }
    flag("work-dir", WORK_DIR.into());
    flag("termination-log", TERMINATION_LOG.into());
    flag("output", "json".into());
    Ok(args)
}

/// Secrets reach the Job as `secretKeyRef` env vars: Qdrant API key, S3 credentials, webhook URL, token and
/// HMAC key — the references the approval froze.
fn package_env(target: &RetrainingTarget) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let mut env = Vec::new();
    if let Some(secret) = target.source.as_ref().and_then(|s| s.api_key_secret_ref.as_ref()) {
        env.push(secret_env(QDRANT_API_KEY_ENV, &secret.name, &secret.key));
    }
    if let Some(retraining) = &target.retraining {
        if let Some(secret) = &retraining.s3.credentials_secret_ref {
            for key in S3_CREDENTIAL_KEYS {
                env.push(secret_env(key, &secret.name, key));
            }
        }
        let webhook = &retraining.webhook;
        env.push(secret_env(
            "DRIFTWATCH_WEBHOOK_URL",
            &webhook.url_secret_ref.name,
            &webhook.url_secret_ref.key,
        ));
        if let Some(secret) = &webhook.token_secret_ref {
            env.push(secret_env("DRIFTWATCH_WEBHOOK_TOKEN", &secret.name, &secret.key));
        }
        if let Some(secret) = &webhook.hmac_secret_ref {
            env.push(secret_env(
                "DRIFTWATCH_WEBHOOK_HMAC_KEY",
                &secret.name,
                &secret.key,
            ));
        }
    }
    env
}

/// The `sizeLimit` of the packaging Job's work volume: the spooled points and fetched objects, and the
/// archive built from them (up to as large again), plus headroom — in MiB, rounded up. A Job that would
/// outgrow it is evicted instead of filling the node's disk.
pub fn work_volume_size_limit(retraining: &RetrainingSpec) -> Quantity {
    let points = u64::try_from(retraining.sample_size.max(1))
        .unwrap_or(1)
        .saturating_mul(WORK_BYTES_PER_POINT);
    let objects = retraining.include_objects.as_ref().map_or(0, |o| {
        o.max_total_bytes
            .as_deref()
            .and_then(crate::job::package::objects::parse_quantity)
            .unwrap_or(DEFAULT_MAX_TOTAL_OBJECT_BYTES)
    });
    let bytes = points
        .saturating_add(objects)
        .saturating_mul(2)
        .saturating_add(WORK_HEADROOM_BYTES);
    let mib = bytes.div_ceil(1024 * 1024);
    Quantity(format!("{mib}Mi"))
}

/// The packaging Job of an approved event, owned by the event (not the monitor: events outlive monitors).
/// `template` is the monitor's `jobTemplate` (Pod placement and resources), when the monitor still exists.
pub fn packaging_job(
    event: &DriftEvent,
    target: &RetrainingTarget,
    template: Option<&JobTemplateSpec>,
    created_at: Timestamp,
    settings: &JobSettings,
) -> Result<Job, PackagingError> {
    let args = package_args(event, target, created_at)?;
    let namespace = event
        .metadata
        .namespace
        .as_deref()
        .ok_or(PackagingError::MissingMetadata("namespace"))?;
    let owner = event
        .controller_owner_ref(&())
        .ok_or(PackagingError::MissingMetadata("uid"))?;
    let template = template.cloned().unwrap_or_default();
    let resources = template
        .package_resources
        .clone()
        .or_else(|| template.resources.clone())
        .unwrap_or_else(|| settings.package_resources.clone());
    let labels = package_labels(&event.spec.monitor_ref.name);
    let container = Container {
        volume_mounts: Some(vec![VolumeMount {
            name: "work".to_string(),
            mount_path: WORK_DIR.to_string(),
            ..VolumeMount::default()
        }]),
        ..driftwatch_container(PACKAGE_CONTAINER, settings, args, package_env(target), resources)
    };
    let volumes = vec![Volume {
        name: "work".to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: target.retraining.as_ref().map(work_volume_size_limit),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let pod = job_pod_spec(container, &template, volumes);
    let mut job = controller_job(
        ObjectMeta {
            name: Some(packaging_job_name(event)),
            namespace: Some(namespace.to_string()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        labels,
        DEFAULT_BACKOFF_LIMIT,
        template
            .active_deadline_seconds
            .map_or(DEFAULT_ACTIVE_DEADLINE_SECONDS, |d| {
                d.max(DEFAULT_ACTIVE_DEADLINE_SECONDS)
            }),
        pod,
    );
    if let Some(spec) = job.spec.as_mut() {
        spec.pod_failure_policy = Some(packaging_pod_failure_policy());
    }
    Ok(job)
}

/// Pod retries (`backoffLimit`) only for failures before the webhook: a Pod that called the webhook (or
/// found the input wrong) exits with [`FINAL_FAILURE_EXIT_CODE`] and fails the Job, so the receiver sees one
/// delivery and its own retries, never a second round from a new Pod. Disruptions (eviction, preemption,
/// node drain) do not count against the retries.
fn packaging_pod_failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "FailJob".to_string(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(PACKAGE_CONTAINER.to_string()),
                    operator: "In".to_string(),
                    values: vec![i32::from(FINAL_FAILURE_EXIT_CODE)],
                }),
                on_pod_conditions: None,
            },
            PodFailurePolicyRule {
                action: "Ignore".to_string(),
                on_exit_codes: None,
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".to_string(),
                    status: "True".to_string(),
                }]),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::v1alpha1::{
        Approval, DriftEventSpec, DriftMonitor, DriftMonitorSpec, MonitorRef, TimeWindow,
    };

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn monitor(retraining: bool) -> DriftMonitor {
        let mut spec: serde_json::Value = serde_json::json!({
            "schedule": "0 * * * *",
            "source": {"qdrant": {"url": "http://qdrant:6334", "collection": "frames",
                "apiKeySecretRef": {"name": "qdrant", "key": "api-key"}}},
            "windows": {"reference": {"duration": "7d"}, "comparison": {"duration": "1h"}},
            "detectors": [{"method": "mmd", "threshold": 0.05}]
        });
        if retraining {
            spec["retraining"] = serde_json::json!({
                "s3": {"bucket": "batches", "prefix": "drift/", "endpoint": "http://minio:9000",
                    "credentialsSecretRef": {"name": "s3"}},
                "webhook": {"urlSecretRef": {"name": "hook", "key": "url"},
                    "hmacSecretRef": {"name": "hook", "key": "hmac"}},
                "sampleSize": 500
            });
        }
        let spec: DriftMonitorSpec = serde_json::from_value(spec).unwrap();
        let mut m = DriftMonitor::new("frames", spec);
        m.metadata.namespace = Some("ml".into());
        m.metadata.uid = Some("m-uid".into());
        m
    }

    fn target(retraining: bool) -> RetrainingTarget {
        super::super::target::of_monitor("frames", Some(&monitor(retraining)))
    }

    fn event(start: Option<&str>) -> DriftEvent {
        let mut e = DriftEvent::new(
            "frames-202603010200",
            DriftEventSpec {
                monitor_ref: MonitorRef {
                    name: "frames".into(),
                },
                detected_at: Time(ts("2026-03-01T02:00:00Z")),
                drift_score: 0.4,
                scores: vec![],
                reference_window: TimeWindow::default(),
                comparison_window: TimeWindow {
                    start: start.map(|s| Time(ts(s))),
                    end: start.map(|_| Time(ts("2026-03-01T02:00:00Z"))),
                    collection: None,
                },
                check_id: None,
                samples: None,
                source: None,
                combined_p_value: None,
                alpha: None,
                approval: Some(Approval {
                    decision: Decision::Approve,
                    approved_by: "alice".into(),
                    reason: Some("new camera firmware".into()),
                }),
            },
        );
        e.metadata.namespace = Some("ml".into());
        e.metadata.uid = Some("e-uid".into());
        e
    }

    fn arg<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        let i = args.iter().position(|a| a == &format!("--{flag}"))?;
        args.get(i + 1).map(String::as_str)
    }

    #[test]
    fn the_job_is_named_after_the_event_owned_by_it_and_holds_no_credentials() {
        let job = packaging_job(
            &event(Some("2026-03-01T01:00:00Z")),
            &target(true),
            None,
            ts("2026-03-01T09:00:00Z"),
            &JobSettings::new("driftwatch:1"),
        )
        .unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("frames-202603010200-package"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("DriftEvent", "e-uid", Some(true))
        );
        let labels = job.metadata.labels.as_ref().unwrap();
        assert_eq!(
            labels.get(labels::COMPONENT).map(String::as_str),
            Some(PACKAGE_COMPONENT)
        );
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        let container = &pod.containers[0];
        assert_eq!(
            container
                .security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
        assert_eq!(container.volume_mounts.as_ref().unwrap()[0].mount_path, WORK_DIR);
        let env: Vec<_> = container
            .env
            .iter()
            .flatten()
            .filter(|e| e.name != crate::controller::drift_monitor::desired::LOG_FORMAT_ENV)
            .collect();
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "QDRANT_API_KEY",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "DRIFTWATCH_WEBHOOK_URL",
                "DRIFTWATCH_WEBHOOK_HMAC_KEY"
            ]
        );
        assert!(
            env.iter()
                .all(|e| e.value.is_none() && e.value_from.as_ref().unwrap().secret_key_ref.is_some())
        );
    }

    #[test]
    fn a_pod_that_called_the_webhook_fails_the_job_instead_of_being_rerun() {
        let job = packaging_job(
            &event(Some("2026-03-01T01:00:00Z")),
            &target(true),
            None,
            ts("2026-03-01T09:00:00Z"),
            &JobSettings::new("driftwatch:1"),
        )
        .unwrap();
        let spec = job.spec.as_ref().unwrap();
        let container = &spec.template.spec.as_ref().unwrap().containers[0];
        let policy = spec.pod_failure_policy.as_ref().expect("a pod failure policy");
        let fail_job = policy.rules.iter().find(|r| r.action == "FailJob").unwrap();
        let codes = fail_job.on_exit_codes.as_ref().unwrap();
        assert_eq!(codes.container_name.as_deref(), Some(container.name.as_str()));
        assert_eq!(
            (codes.operator.as_str(), codes.values.as_slice()),
            ("In", &[3][..])
        );
        assert_eq!(
            policy.rules[0].action, "FailJob",
            "the exit-code rule is matched first"
        );
        // The Job controller requires restartPolicy Never with a pod failure policy.
        assert_eq!(
            spec.template.spec.as_ref().unwrap().restart_policy.as_deref(),
            Some("Never")
        );
    }

    #[test]
    fn the_args_carry_the_window_the_decision_and_the_destination() {
        let args = package_args(
            &event(Some("2026-03-01T01:00:00Z")),
            &target(true),
            ts("2026-03-01T09:00:00Z"),
        )
        .unwrap();
        assert_eq!(args[0], "package");
        assert_eq!(arg(&args, "comparison-start"), Some("2026-03-01T01:00:00Z"));
        assert_eq!(arg(&args, "comparison-end"), Some("2026-03-01T02:00:00Z"));
        assert_eq!(arg(&args, "approved-by"), Some("alice"));
        assert_eq!(arg(&args, "reason"), Some("new camera firmware"));
        assert_eq!(arg(&args, "event-uid"), Some("e-uid"));
        assert_eq!(arg(&args, "created-at"), Some("2026-03-01T09:00:00Z"));
        assert_eq!(arg(&args, "bucket"), Some("batches"));
        assert_eq!(arg(&args, "prefix"), Some("drift/"));
        assert_eq!(arg(&args, "s3-endpoint"), Some("http://minio:9000"));
        assert_eq!(arg(&args, "sample-size"), Some("500"));
        assert_eq!(arg(&args, "sampling-mode"), Some("reservoir"));
        assert_eq!(arg(&args, "strata"), Some("8"));
        assert_eq!(arg(&args, "format"), Some("tar.gz"));
        assert_eq!(arg(&args, "work-dir"), Some(WORK_DIR));
        assert!(!args.iter().any(|a| a.contains("hmac") && !a.starts_with("--")));
    }

    #[test]
    fn an_alert_raised_event_packages_the_monitors_comparison_duration_before_detection() {
        let args = package_args(&event(None), &target(true), ts("2026-03-01T09:00:00Z")).unwrap();
        assert_eq!(arg(&args, "comparison-start"), Some("2026-03-01T01:00:00Z"));
        assert_eq!(arg(&args, "comparison-end"), Some("2026-03-01T02:00:00Z"));
    }

    #[test]
    fn a_monitor_without_retraining_or_an_unapproved_event_cannot_be_packaged() {
        let err = package_args(&event(None), &target(false), ts("2026-03-01T09:00:00Z")).unwrap_err();
        assert!(matches!(err, PackagingError::NothingToTrigger(_)), "{err:?}");
        assert!(err.to_string().contains("spec.retraining"));
        let mut ignored = event(None);
        ignored.spec.approval.as_mut().unwrap().decision = Decision::Ignore;
        assert_eq!(
            package_args(&ignored, &target(true), ts("2026-03-01T09:00:00Z")).unwrap_err(),
            PackagingError::NotApproved
        );
    }

    fn package_pod(monitor: &DriftMonitor, settings: &JobSettings) -> k8s_openapi::api::core::v1::PodSpec {
        packaging_job(
            &event(None),
            &target(true),
            monitor.spec.job_template.as_ref(),
            ts("2026-03-01T09:00:00Z"),
            settings,
        )
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
    }

    fn memory_limit(pod: &k8s_openapi::api::core::v1::PodSpec) -> String {
        pod.containers[0]
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()["memory"]
            .0
            .clone()
    }

    #[test]
    fn the_packaging_job_gets_the_controllers_default_resources() {
        let mut settings = JobSettings::new("driftwatch:1");
        settings.package_resources = crate::controller::drift_monitor::desired::resources("1", "2Gi", "4Gi");
        let pod = package_pod(&monitor(true), &settings);
        assert_eq!(memory_limit(&pod), "4Gi");
    }

    #[test]
    fn a_monitors_package_resources_win_over_its_resources_which_win_over_the_defaults() {
        use crate::{api::v1alpha1::JobTemplateSpec, controller::drift_monitor::desired::resources};
        let settings = JobSettings::new("driftwatch:1");
        let mut m = monitor(true);
        m.spec.job_template = Some(JobTemplateSpec {
            resources: Some(resources("1", "3Gi", "3Gi")),
            ..JobTemplateSpec::default()
        });
        assert_eq!(memory_limit(&package_pod(&m, &settings)), "3Gi");
        m.spec.job_template.as_mut().unwrap().package_resources = Some(resources("1", "5Gi", "5Gi"));
        assert_eq!(memory_limit(&package_pod(&m, &settings)), "5Gi");
    }

    #[test]
    fn the_work_volume_is_limited_to_twice_the_points_and_objects_plus_headroom() {
        let mut retraining = target(true).retraining.unwrap();
        // 500 points × 128 KiB = 62.5 MiB, twice, + 64 MiB.
        assert_eq!(work_volume_size_limit(&retraining), Quantity("189Mi".into()));
        retraining.include_objects = Some(
            serde_json::from_value(serde_json::json!({"payloadField": "frame_uri", "maxTotalBytes": "1Gi"}))
                .unwrap(),
        );
        // (62.5 MiB + 1024 MiB) × 2 + 64 MiB.
        assert_eq!(work_volume_size_limit(&retraining), Quantity("2237Mi".into()));
        retraining.include_objects.as_mut().unwrap().max_total_bytes = None;
        // The 2Gi default of maxTotalBytes.
        assert_eq!(work_volume_size_limit(&retraining), Quantity("4285Mi".into()));
    }

    #[test]
    fn the_packaging_pod_mounts_its_size_limited_work_volume() {
        let pod = package_pod(&monitor(true), &JobSettings::new("driftwatch:1"));
        let volume = &pod.volumes.as_ref().unwrap()[0];
        assert_eq!(volume.name, "work");
        assert_eq!(
            volume.empty_dir.as_ref().unwrap().size_limit,
            Some(Quantity("189Mi".into()))
        );
    }

    #[test]
    fn the_job_packages_the_frozen_target_whatever_the_monitor_says_now() {
        let frozen = target(true);
        let mut changed = monitor(true);
        let retraining = changed.spec.retraining.as_mut().unwrap();
        retraining.s3.bucket = "elsewhere".into();
        retraining.sample_size = 9;
        retraining.webhook.url_secret_ref.name = "other-hook".into();
        let job = packaging_job(
            &event(Some("2026-03-01T01:00:00Z")),
            &frozen,
            changed.spec.job_template.as_ref(),
            ts("2026-03-01T09:00:00Z"),
            &JobSettings::new("driftwatch:1"),
        )
        .unwrap();
        let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
        let args = container.args.clone().unwrap();
        assert_eq!(arg(&args, "bucket"), Some("batches"));
        assert_eq!(arg(&args, "sample-size"), Some("500"));
        let url = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "DRIFTWATCH_WEBHOOK_URL")
            .unwrap();
        let secret = url.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!(secret.name, "hook");
    }

    #[test]
    fn the_job_samples_by_the_frozen_sampling_and_a_target_frozen_without_it_by_reservoir() {
        let mut keyed = monitor(true);
        keyed.spec.sampling.mode = crate::api::v1alpha1::SamplingMode::SampleKey;
        keyed.spec.sampling.sample_key_field = Some("sample_key".into());
        keyed.spec.sampling.strata = 4;
        let frozen = super::super::target::of_monitor("frames", Some(&keyed));
        let created = ts("2026-03-01T09:00:00Z");
        let args = package_args(&event(None), &frozen, created).unwrap();
        assert_eq!(arg(&args, "sampling-mode"), Some("sampleKey"));
        assert_eq!(arg(&args, "sample-key-field"), Some("sample_key"));
        assert_eq!(arg(&args, "strata"), Some("4"));

        let mut old = frozen.clone();
        old.sampling = None;
        let args = package_args(&event(None), &old, created).unwrap();
        assert_eq!(arg(&args, "sampling-mode"), Some("reservoir"));
        assert_eq!(arg(&args, "sample-key-field"), None);
        assert_eq!(arg(&args, "strata"), Some("8"));
    }
}
