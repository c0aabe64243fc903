//! Reconciles a DriftEvent: computes its status from the decision in its spec (pure, in `approval`) and
//! writes it with server-side apply; announces transitions as Kubernetes Events. Does I/O.

pub mod approval;
pub mod naming;

use std::sync::Arc;

use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        controller::Action,
        events::{Event, EventType},
    },
};
use tracing::{info, instrument, warn};

use self::approval::Announcement;
use super::{Context, retry_after};
use crate::{
    api::v1alpha1::DriftEvent,
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
    let name = event
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("name"))?;
    let Some((status, announcement)) = approval::next_status(event, ctx.clock.now()) else {
        return Ok(Action::await_change());
    };
    let api: Api<DriftEvent> = Api::namespaced(ctx.client.clone(), &namespace);
    apply::apply_status(&api, &name, &status, event.resource_version().as_deref())
        .await
        .map_err(|source| Error::WriteStatus {
            kind: KIND,
            name: name.clone(),
            source,
        })?;
    let (reason, note) = match announcement {
        Announcement::EnteredReview => return Ok(Action::await_change()),
        Announcement::Ignored { by } => (
            "EventIgnored",
            format!("ignored by {by}; monitor cooldown starts"),
        ),
        Announcement::Approved { by } => (
            "ApprovalReceived",
            format!("approved by {by}; retrain packaging is not available in this controller version"),
        ),
    };
    info!(reason, "decision recorded");
    let notice = Event {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note: Some(note),
        action: "RecordDecision".to_string(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&notice, &event.object_ref(&())).await {
        warn!(error = %err, "could not publish event");
    }
    Ok(Action::await_change())
}

/// Failed reconciles: log, count, retry with a short backoff.
pub fn error_policy(event: Arc<DriftEvent>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(event = %event.name_any(), error = %error, "DriftEvent reconcile failed");
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[KIND, error.metric_label()])
        .inc();
    retry_after(error)
}
