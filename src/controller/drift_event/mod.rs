//! Reconciles a DriftEvent: computes its status from the decision in its spec, the retraining target its
//! monitor offers and its packaging Job (pure, in `approval`, `target` and `desired`), writes the status with
//! server-side apply, creates the packaging Job after an approval and announces transitions as Kubernetes
//! Events. Does I/O.
//!
//! Restart safety: an approval is first written into the status — phase Packaging, the frozen retraining
//! target and the packaging start time — and only then is the Job created from that status. A controller
//! that stops in between finds the event in Packaging without its Job and creates it from the same status,
//! so every (re-)created Job has the same arguments and builds the identical archive.
//!
//! Trust: a packaging Job counts only when this event controls it (owner uid), and its result only when it
//! comes from a Pod the Job controls and names this event; anything else ends in RetrainingFailed with a
//! named error, never in Actioned.

pub mod approval;
pub mod desired;
pub mod naming;
pub mod target;

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
    api::v1alpha1::{DriftEvent, DriftEventStatus, DriftMonitor, JobTemplateSpec, Phase, RetrainingTarget},
    error::{Error, Result},
    k8s::apply,
};

const KIND: &str = "DriftEvent";
/// `kind` of the error recorded when a Job of the packaging Job's name is not this event's.
pub const JOB_NOT_OWNED: &str = "PackagingJobNotOwned";

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
    let phase = event.status.as_ref().and_then(|s| s.phase);
    let in_review = matches!(phase, None | Some(Phase::NeedsReview));
    // What an approval would hand off to: only read while the decision is open.
    let monitor = if in_review {
        read_monitor(event, ctx, &namespace).await?
    } else {
        None
    };
    let observed = target::of_monitor(&event.spec.monitor_ref.name, monitor.as_ref());
    match approval::next_status(event, &observed, now) {
        Some((status, Announcement::Approved { by, job })) => {
            // The frozen target and start time are stored before the Job exists.
            let written = write_status(event, ctx, &namespace, &status).await?;
            let template = monitor.as_ref().and_then(|m| m.spec.job_template.as_ref());
            match create_packaging_job(&written, ctx, &namespace, template).await? {
                None => announce(event, ctx, &namespace, Announcement::Approved { by, job }).await,
                Some((status, announcement)) => {
                    write_status(&written, ctx, &namespace, &status).await?;
                    announce(event, ctx, &namespace, announcement).await;
                }
            }
        }
        Some((status, announcement)) => {
            write_status(event, ctx, &namespace, &status).await?;
            announce(event, ctx, &namespace, announcement).await;
        }
        None if phase == Some(Phase::Packaging) => {
            if let Some((status, announcement)) = follow_packaging(event, ctx, &namespace).await? {
                write_status(event, ctx, &namespace, &status).await?;
                announce(event, ctx, &namespace, announcement).await;
            }
        }
        None => {}
    }
    Ok(Action::await_change())
}

/// The event's DriftMonitor, if it still exists.
async fn read_monitor(event: &DriftEvent, ctx: &Context, namespace: &str) -> Result<Option<DriftMonitor>> {
    let name = &event.spec.monitor_ref.name;
    Api::<DriftMonitor>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| Error::ReadMonitor {
            name: name.clone(),
            source,
        })
}

/// The target the event's approval froze. Events that entered Packaging before targets were recorded
/// fall back to what their monitor says now (what the controller then did).
async fn frozen_target(event: &DriftEvent, ctx: &Context, namespace: &str) -> Result<RetrainingTarget> {
    if let Some(target) = event.status.as_ref().and_then(|s| s.retraining_target.clone()) {
        return Ok(target);
    }
    let monitor = read_monitor(event, ctx, namespace).await?;
    Ok(target::of_monitor(&event.spec.monitor_ref.name, monitor.as_ref()))
}

/// Creates the packaging Job from the event's (written) status. `None` when the Job exists and is the
/// event's; otherwise the RetrainingFailed status to write (the Job cannot be built, or a Job of its name
/// belongs to someone else).
async fn create_packaging_job(
    event: &DriftEvent,
    ctx: &Context,
    namespace: &str,
    template: Option<&JobTemplateSpec>,
) -> Result<Option<(DriftEventStatus, Announcement)>> {
    let target = frozen_target(event, ctx, namespace).await?;
    let created_at = approval::packaging_started_at(event);
    let job = match desired::packaging_job(event, &target, template, created_at, &ctx.jobs) {
        Ok(job) => job,
        Err(error) => {
            return Ok(approval::finish_packaging(
                event,
                Err(error.to_string()),
                ctx.clock.now(),
            ));
        }
    };
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let name = job.name_any();
    match jobs.create(&PostParams::default(), &job).await {
        Ok(_) => {
            info!(job = %name, "created the packaging Job");
            Ok(None)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = jobs.get_opt(&name).await.map_err(|source| Error::ReadJob {
                job: name.clone(),
                source,
            })?;
            match existing {
                Some(existing) if owned_by_event(&existing, event) => {
                    info!(job = %name, "the packaging Job exists already");
                    Ok(None)
                }
                // Deleted between the 409 and the read: the next reconcile creates it.
                None => Ok(None),
                Some(_) => Ok(approval::finish_packaging(
                    event,
                    Err(not_owned(&name)),
                    ctx.clock.now(),
                )),
            }
        }
        Err(source) => Err(Error::ApplyJob { job: name, source }),
    }
}

/// Whether the event controls the Job (a controller owner reference to the event's uid).
fn owned_by_event(job: &Job, event: &DriftEvent) -> bool {
    let Some(uid) = event.metadata.uid.as_deref() else {
        return false;
    };
    job.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == KIND && o.uid == uid)
}

fn not_owned(job: &str) -> String {
    format!(
        "{JOB_NOT_OWNED}: a Job named {job} exists but this DriftEvent does not own it, so its result is not \
         trusted and nothing was packaged; find out who created it"
    )
}

/// In Packaging: waits for the Job, then records its outcome. A Job deleted before it reported is created
/// again from the same status (same arguments, same archive; the upload is reused).
async fn follow_packaging(
    event: &DriftEvent,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<(DriftEventStatus, Announcement)>> {
    let name = naming::packaging_job_name(event);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let job = jobs.get_opt(&name).await.map_err(|source| Error::ReadJob {
        job: name.clone(),
        source,
    })?;
    let Some(job) = job else {
        warn!(job = %name, "the packaging Job does not exist (yet); creating it");
        let monitor = read_monitor(event, ctx, namespace).await?;
        let template = monitor.as_ref().and_then(|m| m.spec.job_template.as_ref());
        return create_packaging_job(event, ctx, namespace, template).await;
    };
    if !owned_by_event(&job, event) {
        return Ok(approval::finish_packaging(
            event,
            Err(not_owned(&name)),
            ctx.clock.now(),
        ));
    }
    let state = job_state(&job, ctx.clock.now());
    if state == JobState::Active {
        return Ok(None);
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let message = read_termination_message(&pods, &job).await?;
    let event_id = format!("{namespace}/{}", event.name_any());
    let outcome = approval::packaging_outcome(&state, message.as_deref(), &event_id);
    Ok(approval::finish_packaging(event, outcome, ctx.clock.now()))
}

/// Writes the status, conditional on the version the decision was computed from; returns the event as
/// written.
async fn write_status(
    event: &DriftEvent,
    ctx: &Context,
    namespace: &str,
    status: &DriftEventStatus,
) -> Result<DriftEvent> {
    let name = event.name_any();
    let api: Api<DriftEvent> = Api::namespaced(ctx.client.clone(), namespace);
    apply::apply_status(&api, &name, status, event.resource_version().as_deref())
        .await
        .map_err(|source| Error::WriteStatus {
            kind: KIND,
            name,
            source,
        })
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
