//! Reconciles a DriftMonitor: observe (Jobs, Pods' results, DriftEvents) → fold results into status and
//! raise/update DriftEvents → decide the schedule → apply the check Job → write status → prune → requeue
//! at the next slot. Does I/O; the decisions live in the pure submodules.

pub mod cron;
pub mod desired;
pub mod raise;
pub mod schedule;
pub mod status;

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{
    api::{batch::v1::Job, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Resource, ResourceExt,
    api::ListParams,
    runtime::{
        controller::Action,
        events::{Event, EventType},
    },
};
use tracing::{debug, info, instrument, warn};

use self::{
    desired::{annotations, check_selector},
    raise::EventPlan,
    schedule::{DEFAULT_STARTING_DEADLINE, Schedule, ScheduleInput, Trigger},
    status::{CheckResult, FinishedCheck, Readiness},
};
use super::{
    Context,
    job_status::{JobState, job_state, read_termination_message},
    retry_after,
};
use crate::{
    api::{
        parse_duration,
        v1alpha1::{DriftEvent, DriftMonitor, DriftMonitorStatus, condition, reason},
    },
    error::{Error, Result},
    job::{
        redact::redact_urls,
        result::{JobError, parse_check_report},
    },
    k8s::apply,
};

/// Finished check Jobs kept per monitor unless `jobTemplate.historyLimit` says otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 3;
const KIND: &str = "DriftMonitor";

fn job_slot(job: &Job) -> Option<Timestamp> {
    job.annotations()
        .get(annotations::SLOT)
        .and_then(|s| s.parse().ok())
        .or_else(|| job.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Marks the Jobs whose results were just written into the status.
async fn mark_processed(ctx: &Context, namespace: &str, checks: &[FinishedCheck]) -> Result<()> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    for check in checks {
        apply::annotate(&api, &check.check_id, annotations::PROCESSED, "true")
            .await
            .map_err(|source| Error::ApplyJob {
                job: check.check_id.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Reads the result of a finished Job from its Pod.
async fn finished_check(
    pods: &Api<Pod>,
    job: &Job,
    slot: Timestamp,
    state: &JobState,
) -> Result<FinishedCheck> {
    let name = job.name_any();
    let message = read_termination_message(pods, job).await?;
    let (at, result) = match (state, message) {
        (JobState::Succeeded { at } | JobState::Failed { at, .. }, Some(text)) => {
            let report = parse_check_report(&text).and_then(|report| {
                report.validate_for(&name)?;
                Ok(report)
            });
            let result = match report {
                Ok(report) => match (report.result, report.error) {
                    (Some(outcome), None) if matches!(state, JobState::Succeeded { .. }) => {
                        CheckResult::Succeeded(Box::new(outcome))
                    }
                    (_, Some(error)) => CheckResult::Failed(JobError {
                        message: redact_urls(&error.message),
                        ..error
                    }),
                    (Some(_), None) => CheckResult::Failed(JobError {
                        kind: "JobFailed".into(),
                        message: "the Job failed after reporting a result".into(),
                    }),
                    (None, None) => CheckResult::Failed(JobError {
                        kind: "ResultUnreadable".into(),
                        message: "the result document has neither result nor error".into(),
                    }),
                },
                Err(err) => CheckResult::Failed(JobError {
                    kind: "ResultUnreadable".into(),
                    message: err.to_string(),
                }),
            };
            (*at, result)
        }
        (JobState::Failed { at, reason, message }, None) => (
            *at,
            CheckResult::Failed(JobError {
                kind: reason.clone(),
                message: if message.is_empty() {
                    "the check Job failed without a result".to_string()
                } else {
                    redact_urls(message)
                },
            }),
        ),
        (JobState::Succeeded { at }, None) => (
            *at,
            CheckResult::Failed(JobError {
                kind: "ResultMissing".into(),
                message: "the check Job completed without a termination message".into(),
            }),
        ),
        (JobState::Active, _) => unreachable_active(),
    };
    Ok(FinishedCheck {
        check_id: name,
        slot,
        finished_at: at,
        result,
    })
}

// Active Jobs are filtered out before results are read.
fn unreachable_active() -> (Timestamp, CheckResult) {
    (
        Timestamp::UNIX_EPOCH,
        CheckResult::Failed(JobError {
            kind: "Internal".into(),
            message: "an active Job has no result".into(),
        }),
    )
}

struct Observed {
    /// (job, slot, state), oldest slot first.
    jobs: Vec<(Job, Timestamp, JobState)>,
    events: Vec<DriftEvent>,
}

async fn observe(ctx: &Context, monitor: &DriftMonitor, namespace: &str, name: &str) -> Result<Observed> {
    let now = ctx.clock.now();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let uid = monitor.metadata.uid.clone();
    let mut jobs: Vec<(Job, Timestamp, JobState)> = jobs_api
        .list(&ListParams::default().labels(&check_selector(name)))
        .await
        .map_err(Error::ListJobs)?
        .items
        .into_iter()
        .filter(|job| {
            job.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref())
        })
        .filter_map(|job| {
            let slot = job_slot(&job)?;
            let state = job_state(&job, now);
            Some((job, slot, state))
        })
        .collect();
    jobs.sort_by_key(|(job, slot, _)| (*slot, job.name_any()));
    let events_api: Api<DriftEvent> = Api::namespaced(ctx.client.clone(), namespace);
    let events = events_api
        .list(&ListParams::default().labels(&format!(
            "{}={}",
            desired::labels::MONITOR,
            desired::monitor_label(name)
        )))
        .await
        .map_err(Error::ListEvents)?
        .items
        .into_iter()
        .filter(|e| e.spec.monitor_ref.name == name)
        .collect();
    Ok(Observed { jobs, events })
}

/// A Kubernetes Event to publish after the status is written.
struct Notice {
    type_: EventType,
    reason: &'static str,
    action: &'static str,
    note: String,
}

fn notice(type_: EventType, reason: &'static str, action: &'static str, note: String) -> Notice {
    Notice {
        type_,
        reason,
        action,
        note,
    }
}

/// Reconciles one DriftMonitor.
#[instrument(skip_all, fields(namespace = monitor.namespace().unwrap_or_default(), monitor = monitor.name_any()))]
pub async fn reconcile(monitor: Arc<DriftMonitor>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    ctx.metrics.reconciles.with_label_values(&[KIND]).inc();
    let result = reconcile_inner(&monitor, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .with_label_values(&[KIND])
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(monitor: &DriftMonitor, ctx: &Context) -> Result<Action> {
    let namespace = monitor.namespace().ok_or(Error::MissingObjectKey("namespace"))?;
    let name = monitor
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("name"))?;
    let generation = monitor.metadata.generation;
    let now = ctx.clock.now();
    let observed = observe(ctx, monitor, &namespace, &name).await?;
    let old_status = monitor.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let mut notices = Vec::new();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let events_api: Api<DriftEvent> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut events = observed.events;

    // Invalid settings the API server could not reject.
    let schedule = Schedule::parse(&monitor.spec.schedule, monitor.spec.time_zone.as_deref())
        .map_err(|e| format!("spec.schedule/timeZone: {e}"));
    let cooldown =
        parse_duration(&monitor.spec.events.cooldown).map_err(|e| format!("spec.events.cooldown: {e}"));

    // Fold finished, unprocessed checks into the status, oldest first.
    let mut processed: Vec<FinishedCheck> = Vec::new();
    for (job, slot, state) in &observed.jobs {
        if *state == JobState::Active || status::job_processed(job, &status) {
            continue;
        }
        let check = finished_check(&pods, job, *slot, state).await?;
        if let CheckResult::Succeeded(outcome) = &check.result
            && outcome.drift_detected
        {
            let cooldown = cooldown.clone().unwrap_or(Duration::from_secs(86_400));
            let plan = raise::plan(
                &name,
                &namespace,
                &events,
                cooldown,
                raise::Firing {
                    check_id: &check.check_id,
                    slot: check.slot,
                    outcome,
                },
                now,
            );
            apply_event_plan(&events_api, &plan, &mut events, &mut notices, &check).await?;
        }
        status::record_check(&mut status, &check, generation);
        processed.push(check);
    }

    // Schedule.
    let active: Vec<&Job> = observed
        .jobs
        .iter()
        .filter(|(_, _, state)| *state == JobState::Active)
        .map(|(job, _, _)| job)
        .collect();
    let readiness = match (&schedule, &cooldown) {
        (Err(message), _) | (_, Err(message)) => Readiness::Invalid(message.clone()),
        (Ok(_), Ok(_)) if monitor.spec.suspend => Readiness::Suspended,
        (Ok(_), Ok(_)) => Readiness::Scheduled,
    };
    status.active_job = active.first().map(|j| j.name_any());
    let requeue = match &schedule {
        Ok(schedule) if !matches!(readiness, Readiness::Invalid(_)) => {
            let run_now = monitor
                .annotations()
                .get(annotations::RUN_NOW)
                .map(String::as_str);
            let input = ScheduleInput {
                now,
                created: monitor.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0),
                last_schedule: status.last_schedule_time.as_ref().map(|t| t.0),
                suspend: monitor.spec.suspend,
                starting_deadline: monitor
                    .spec
                    .starting_deadline_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .map_or(DEFAULT_STARTING_DEADLINE, Duration::from_secs),
                run_now,
                handled_run_now: status.last_run_now.as_deref(),
                active: !active.is_empty(),
            };
            let decision = schedule::decide(schedule, &input);
            status.next_schedule_time = decision.next.map(Time);
            if let Some(run) = decision.run {
                let request = match &run.trigger {
                    Trigger::RunNow(request) => Some(request.as_str()),
                    Trigger::Scheduled => None,
                };
                let job = desired::check_job(monitor, run.slot, request, &ctx.jobs)?;
                let job_name = job.name_any();
                let exists = observed.jobs.iter().any(|(j, _, _)| j.name_any() == job_name);
                if !exists {
                    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
                    apply::apply(&jobs_api, &job)
                        .await
                        .map_err(|source| Error::ApplyJob {
                            job: job_name.clone(),
                            source,
                        })?;
                    info!(job = %job_name, slot = %run.slot, "check scheduled");
                    let why = match &run.trigger {
                        Trigger::Scheduled => format!("slot {}", run.slot),
                        Trigger::RunNow(request) => format!("run-now request {request:?}"),
                    };
                    notices.push(notice(
                        EventType::Normal,
                        "CheckScheduled",
                        "ScheduleCheck",
                        format!("created check Job {job_name} for {why}"),
                    ));
                    status.active_job = Some(job_name);
                }
                status.last_schedule_time = Some(Time(run.slot));
                if let Trigger::RunNow(request) = run.trigger {
                    status.last_run_now = Some(request);
                }
            }
            Some(decision.requeue_after)
        }
        _ => {
            status.next_schedule_time = None;
            None
        }
    };

    // Events in review and the Ignore cooldown, from the monitor's DriftEvents.
    status.open_event = raise::open_event(&events).and_then(|e| e.metadata.name.clone());
    status.last_ignored_time = raise::last_ignored(&events).map(Time);
    status::set_readiness(&mut status, &readiness, generation, now);
    if let Readiness::Invalid(message) = &readiness {
        let was_invalid = status::find_condition(&old_status, condition::READY)
            .is_some_and(|c| c.reason == reason::INVALID_SPEC && &c.message == message);
        if !was_invalid {
            warn!(%message, "invalid spec");
            notices.push(notice(
                EventType::Warning,
                "InvalidSpec",
                "ValidateSpec",
                message.clone(),
            ));
        }
    }

    if status::changed(&old_status, &status) {
        // Precondition: the status was computed from this read of the monitor; a write by anyone else since
        // (another replica, a stale cache) fails with 409 and the reconcile runs again on fresh data.
        write_status(
            ctx,
            &namespace,
            &name,
            &status,
            monitor.resource_version().as_deref(),
        )
        .await?;
    }

    // Mark the Jobs whose results the status now holds.
    mark_processed(ctx, &namespace, &processed).await?;

    // Counters and notices once the status holds the results.
    for check in &processed {
        record_metrics(ctx, &namespace, &name, check, &mut notices);
    }
    for n in notices {
        publish(ctx, monitor, n).await;
    }

    prune(ctx, monitor, &namespace, &observed.jobs, &status).await?;

    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

async fn apply_event_plan(
    api: &Api<DriftEvent>,
    plan: &EventPlan,
    events: &mut Vec<DriftEvent>,
    notices: &mut Vec<Notice>,
    check: &FinishedCheck,
) -> Result<()> {
    match plan {
        EventPlan::Create(event) => {
            let name = event.name_any();
            if events.iter().any(|e| e.name_any() == name) {
                return Ok(());
            }
            let mut spec_only = (**event).clone();
            let status = spec_only.status.take();
            let created = apply::apply(api, &spec_only)
                .await
                .map_err(|source| Error::ApplyEvent {
                    name: name.clone(),
                    source,
                })?;
            let written = match &status {
                Some(status) => apply::apply_status(api, &name, status, None)
                    .await
                    .map_err(|source| Error::WriteStatus {
                        kind: "DriftEvent",
                        name: name.clone(),
                        source,
                    })?,
                None => created,
            };
            info!(event = %name, "drift event raised");
            notices.push(notice(
                EventType::Warning,
                "DriftDetected",
                "RaiseDriftEvent",
                format!(
                    "check {} found drift; DriftEvent {name} awaits review",
                    check.check_id
                ),
            ));
            events.push(written);
        }
        EventPlan::Update { name, status } => {
            let version = events
                .iter()
                .find(|e| &e.name_any() == name)
                .and_then(|e| e.resource_version());
            let written = apply::apply_status(api, name, status, version.as_deref())
                .await
                .map_err(|source| Error::WriteStatus {
                    kind: "DriftEvent",
                    name: name.clone(),
                    source,
                })?;
            notices.push(notice(
                EventType::Warning,
                "DriftDetected",
                "UpdateDriftEvent",
                format!(
                    "check {} found drift again; DriftEvent {name} now counts {} occurrences",
                    check.check_id,
                    status.occurrences.unwrap_or(1)
                ),
            ));
            if let Some(slot) = events.iter_mut().find(|e| &e.name_any() == name) {
                *slot = written;
            }
        }
        EventPlan::AlreadyCounted { name } => debug!(event = %name, "check already counted"),
        EventPlan::Cooldown { until } => {
            info!(%until, "drift found during the cooldown after an Ignore; no new event");
        }
    }
    Ok(())
}

async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &DriftMonitorStatus,
    read_version: Option<&str>,
) -> Result<()> {
    let api: Api<DriftMonitor> = Api::namespaced(ctx.client.clone(), namespace);
    apply::apply_status(&api, name, status, read_version)
        .await
        .map_err(|source| Error::WriteStatus {
            kind: KIND,
            name: name.to_string(),
            source,
        })?;
    Ok(())
}

fn record_metrics(
    ctx: &Context,
    namespace: &str,
    name: &str,
    check: &FinishedCheck,
    notices: &mut Vec<Notice>,
) {
    let labels = [namespace, name];
    match &check.result {
        CheckResult::Succeeded(outcome) => {
            ctx.metrics
                .check_duration
                .with_label_values(&labels)
                .observe(outcome.duration_seconds);
            if outcome.drift_detected {
                ctx.metrics.drift_detected.with_label_values(&labels).inc();
            }
            let headline = outcome
                .scores
                .first()
                .map(|s| format!("; {} on {} = {:.4}", s.method, s.source, s.score))
                .unwrap_or_default();
            notices.push(notice(
                EventType::Normal,
                "CheckSucceeded",
                "RecordResult",
                format!(
                    "check {} finished: drift {}{headline}",
                    check.check_id,
                    if outcome.drift_detected {
                        "detected"
                    } else {
                        "not detected"
                    }
                ),
            ));
        }
        CheckResult::Failed(error) => {
            ctx.metrics
                .check_failures
                .with_label_values(&[namespace, name, &error.kind])
                .inc();
            notices.push(notice(
                EventType::Warning,
                "CheckFailed",
                "RecordResult",
                format!(
                    "check {} failed: {}: {}",
                    check.check_id, error.kind, error.message
                ),
            ));
        }
    }
}

async fn publish(ctx: &Context, monitor: &DriftMonitor, n: Notice) {
    let mut note = n.note;
    if note.len() > 1000 {
        let cut = (0..=1000).rev().find(|i| note.is_char_boundary(*i)).unwrap_or(0);
        note.truncate(cut);
    }
    let event = Event {
        type_: n.type_,
        reason: n.reason.to_string(),
        note: Some(note),
        action: n.action.to_string(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &monitor.object_ref(&())).await {
        warn!(error = %err, reason = n.reason, "could not publish event");
    }
}

/// Deletes processed, finished check Jobs beyond the history limit, oldest first.
async fn prune(
    ctx: &Context,
    monitor: &DriftMonitor,
    namespace: &str,
    jobs: &[(Job, Timestamp, JobState)],
    status: &DriftMonitorStatus,
) -> Result<()> {
    let limit = monitor
        .spec
        .job_template
        .as_ref()
        .and_then(|t| t.history_limit)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(DEFAULT_HISTORY_LIMIT);
    let finished: Vec<&Job> = jobs
        .iter()
        .filter(|(job, _, state)| *state != JobState::Active && status::job_processed(job, status))
        .map(|(job, _, _)| job)
        .collect();
    let excess = finished.len().saturating_sub(limit);
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    for job in finished.into_iter().take(excess) {
        let name = job.name_any();
        apply::delete(&api, &name)
            .await
            .map_err(|source| Error::DeleteJob {
                job: name.clone(),
                source,
            })?;
        debug!(job = %name, "pruned finished check Job");
    }
    Ok(())
}

/// Failed reconciles: log, count, retry with a short backoff (conflicts at once).
pub fn error_policy(monitor: Arc<DriftMonitor>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(monitor = %monitor.name_any(), error = %error, source = ?std::error::Error::source(error), "DriftMonitor reconcile failed");
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[KIND, error.metric_label()])
        .inc();
    retry_after(error)
}
