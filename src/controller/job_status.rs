//! Where a Job the controller runs stands, and the result its Pod left in the termination message. Shared
//! by the check Jobs (DriftMonitor) and the packaging Jobs (DriftEvent).

use jiff::Timestamp;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{Api, api::ListParams};

use crate::error::{Error, Result};

/// Where a Job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Active,
    Succeeded {
        at: Timestamp,
    },
    Failed {
        at: Timestamp,
        reason: String,
        message: String,
    },
}

pub fn job_state(job: &Job, now: Timestamp) -> JobState {
    let status = job.status.as_ref();
    let conditions = status
        .and_then(|s| s.conditions.as_ref())
        .cloned()
        .unwrap_or_default();
    let completion = status.and_then(|s| s.completion_time.as_ref()).map(|t| t.0);
    for c in &conditions {
        if c.status != "True" {
            continue;
        }
        let at = c
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .or(completion)
            .unwrap_or(now);
        match c.type_.as_str() {
            "Complete" => {
                return JobState::Succeeded {
                    at: completion.unwrap_or(at),
                };
            }
            "Failed" => {
                return JobState::Failed {
                    at,
                    reason: c.reason.clone().unwrap_or_else(|| "JobFailed".to_string()),
                    message: c.message.clone().unwrap_or_default(),
                };
            }
            _ => {}
        }
    }
    JobState::Active
}

/// The termination message of the Job's newest Pod (current or last terminated state).
pub async fn read_termination_message(pods: &Api<Pod>, job: &str) -> Result<Option<String>> {
    let read = |selector: String| async move {
        pods.list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::ReadPods {
                job: job.to_string(),
                source,
            })
    };
    let mut list = read(format!("batch.kubernetes.io/job-name={job}")).await?.items;
    if list.is_empty() {
        list = read(format!("job-name={job}")).await?.items;
    }
    list.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let message = list.iter().rev().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|cs| {
            let current = cs.state.as_ref().and_then(|s| s.terminated.as_ref());
            let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            current
                .and_then(|t| t.message.clone())
                .or_else(|| last.and_then(|t| t.message.clone()))
                .filter(|m| !m.trim().is_empty())
        })
    });
    Ok(message)
}
