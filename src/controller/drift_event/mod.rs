//! Reconciles a DriftEvent: computes its status from the decision in its spec and from its packaging Job
//! (pure, in `approval` and `desired`), creates the packaging Job after an approval, writes the status with
//! server-side apply and announces transitions as Kubernetes Events. Does I/O.
//!
//! Restart safety: the packaging Job's name is derived from the event and its `--created-at` from the
//! approval's audit entry, so a controller that stops between creating the Job and writing `Packaging`
//! finds the same Job on start (create answers 409) instead of making a second one.

pub mod approval;
pub mod desired;
pub mod naming;

use std::sync::Arc;

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api, Resource, ResourceExt,
    api::PostParams,
    runtime::{
        controller::Action,
        events::{Event, EventType},
    },
};
use tracing::{info, instrument, warn};

use self::approval::Announcement;
use super::{
    Context,
    job_status::{JobState, job_state, read_termination_message},
    retry_after,
};
use crate::{
    api::v1alpha1::{DriftEvent, DriftEventStatus, DriftMonitor, Phase},
    error::{Error, Result},
    k8s::apply,
};

const KIND: &str = "DriftEvent";

/// Reconciles one DriftEvent.
#[instrument(skip_all, fields(namespace = event.namespace().unwrap_or_default(), event = event.name_any()))]
pub async fn reconcile(event: Arc<DriftEvent>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    ctx.metrics.reconciles.with_label_values(&[KIND]).inc();
    let result = reconcile_inner(&event, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .with_label_values(&[KIND])
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(event: &DriftEvent, ctx: &Context) -> Result<Action> {
    let namespace = event.namespace().ok_or(Error::MissingObjectKey("namespace"))?;
    let now = ctx.clock.now();
    let next = match approval::next_status(event, now) {
        Some((status, Announcement::Approved { by, job })) => {
            Some(start_packaging(event, ctx, &namespace, status, by, job).await?)
        }
        Some(next) => Some(next),
        None if event.status.as_ref().and_then(|s| s.phase) == Some(Phase::Packaging) => {
            follow_packaging(event, ctx, &namespace).await?
        }
        None => None,
    };
    let Some((status, announcement)) = next else {
        return Ok(Action::await_change());
    };
    write_status(event, ctx, &namespace, &status).await?;
    announce(event, ctx, &namespace, announcement).await;
    Ok(Action::await_change())
}

/// Creates the packaging Job of a just-approved event (or finds it, after a restart); an event whose monitor
/// cannot package (gone, no `spec.retraining`) fails at once.
async fn start_packaging(
    event: &DriftEvent,
    ctx: &Context,
    namespace: &str,
    status: DriftEventStatus,
    by: String,
    job: String,
) -> Result<(DriftEventStatus, Announcement)> {
    let created_at = approval::packaging_started_at(&status).unwrap_or_else(|| ctx.clock.now());
    match build_job(event, ctx, namespace, created_at).await? {
        Ok(desired) => {
            create_job(ctx, namespace, &desired).await?;
            Ok((status, Announcement::Approved { by, job }))
        }
        Err(error) => Ok(approval::packaging_cannot_start(
            event,
            status,
            error.to_string(),
            ctx.clock.now(),
        )),
    }
}

/// The packaging Job for the event, or why there cannot be one.
async fn build_job(
    event: &DriftEvent,
    ctx: &Context,
    namespace: &str,
    created_at: jiff::Timestamp,
) -> Result<Result<Job, desired::PackagingError>> {
    let monitor_name = &event.spec.monitor_ref.name;
    let monitors: Api<DriftMonitor> = Api::namespaced(ctx.client.clone(), namespace);
    let monitor = monitors
        .get_opt(monitor_name)
        .await
        .map_err(|source| Error::ReadMonitor {
            name: monitor_name.clone(),
            source,
        })?;
    Ok(match monitor {
        Some(monitor) => desired::packaging_job(event, &monitor, created_at, &ctx.jobs),
        None => Err(desired::PackagingError::MonitorGone(monitor_name.clone())),
    })
}

async fn create_job(ctx: &Context, namespace: &str, job: &Job) -> Result<()> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let name = job.name_any();
    match jobs.create(&PostParams::default(), job).await {
        Ok(_) => {
            info!(job = %name, "created the packaging Job");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            info!(job = %name, "the packaging Job exists already");
            Ok(())
        }
        Err(source) => Err(Error::ApplyJob { job: name, source }),
    }
}

/// In Packaging: waits for the Job, then records its outcome. A Job deleted before it reported is created
/// again (same name, same archive, the upload is reused).
async fn follow_packaging(
    event: &DriftEvent,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<(DriftEventStatus, Announcement)>> {
    let status = event.status.clone().unwrap_or_default();
    let name = naming::packaging_job_name(event);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let job = jobs.get_opt(&name).await.map_err(|source| Error::ReadJob {
        job: name.clone(),
        source,
    })?;
    let Some(job) = job else {
        let created_at = approval::packaging_started_at(&status).unwrap_or_else(|| ctx.clock.now());
        return match build_job(event, ctx, namespace, created_at).await? {
            Ok(desired) => {
                warn!(job = %name, "the packaging Job is gone before it reported; creating it again");
                create_job(ctx, namespace, &desired).await?;
                Ok(None)
            }
            Err(error) => Ok(approval::finish_packaging(
                event,
                Err(error.to_string()),
                ctx.clock.now(),
            )),
        };
    };
    let state = job_state(&job, ctx.clock.now());
    if state == JobState::Active {
        return Ok(None);
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let message = read_termination_message(&pods, &name).await?;
    let outcome = approval::packaging_outcome(&state, message.as_deref());
    Ok(approval::finish_packaging(event, outcome, ctx.clock.now()))
}

async fn write_status(
    event: &DriftEvent,
    ctx: &Context,
    namespace: &str,
    status: &DriftEventStatus,
) -> Result<()> {
    let name = event.name_any();
    let api: Api<DriftEvent> = Api::namespaced(ctx.client.clone(), namespace);
    apply::apply_status(&api, &name, status, event.resource_version().as_deref())
        .await
        .map_err(|source| Error::WriteStatus {
            kind: KIND,
            name,
            source,
        })?;
    Ok(())
}

/// Counts and publishes a transition once its status is written.
async fn announce(event: &DriftEvent, ctx: &Context, namespace: &str, announcement: Announcement) {
    let monitor = event.spec.monitor_ref.name.as_str();
    let reason_why = || {
        event
            .spec
            .approval
            .as_ref()
            .and_then(|a| a.reason.clone())
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    };
    let (type_, reason, action, note) = match announcement {
        Announcement::EnteredReview => return,
        Announcement::Ignored { by } => (
            EventType::Normal,
            "EventIgnored",
            "RecordDecision",
            format!("ignored by {by}{}; monitor cooldown starts", reason_why()),
        ),
        Announcement::Approved { by, job } => (
            EventType::Normal,
            "PackagingStarted",
            "RecordDecision",
            format!("approved by {by}{}; packaging Job {job} created", reason_why()),
        ),
        Announcement::Delivered {
            s3_uri,
            retraining_job_id,
        } => {
            ctx.metrics
                .retraining_triggered
                .with_label_values(&[namespace, monitor])
                .inc();
            let job = retraining_job_id
                .map(|id| format!("; retraining job {id}"))
                .unwrap_or_default();
            (
                EventType::Normal,
                "RetrainingTriggered",
                "Package",
                format!("batch {s3_uri} delivered to the retraining webhook{job}"),
            )
        }
        Announcement::Failed { error } => {
            ctx.metrics
                .retraining_failed
                .with_label_values(&[namespace, monitor])
                .inc();
            (EventType::Warning, "RetrainingFailed", "Package", error)
        }
    };
    info!(reason, note = %note, "DriftEvent transition");
    let notice = Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(note, 1024)),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&notice, &event.object_ref(&())).await {
        warn!(error = %err, "could not publish event");
    }
}

/// Kubernetes Event notes are limited to 1 KiB.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max.saturating_sub(3);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// Failed reconciles: log, count, retry with a short backoff.
pub fn error_policy(event: Arc<DriftEvent>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(event = %event.name_any(), error = %error, source = ?std::error::Error::source(error), "DriftEvent reconcile failed");
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[KIND, error.metric_label()])
        .inc();
    retry_after(error)
}
