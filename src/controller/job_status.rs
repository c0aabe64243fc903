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

/// Whether `pod` belongs to `job`: a controller owner reference to the Job's uid. Pods merely labelled
/// `job-name=<name>` (which anyone who may create Pods can make) do not count.
pub fn owned_by(pod: &Pod, job: &Job) -> bool {
    let Some(uid) = job.metadata.uid.as_deref() else {
        return false;
    };
    pod.metadata.owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.controller == Some(true) && r.kind == "Job" && r.uid == uid)
    })
}

/// The termination message of the newest Pod that `job` owns (current or last terminated state). Pods are
/// found by the Job's `controller-uid` label and kept only when their controller owner is the Job itself.
pub async fn read_termination_message(pods: &Api<Pod>, job: &Job) -> Result<Option<String>> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let Some(uid) = job.metadata.uid.as_deref() else {
        return Ok(None);
    };
    let read = |selector: String| {
        let name = name.clone();
        async move {
            pods.list(&ListParams::default().labels(&selector))
                .await
                .map_err(|source| Error::ReadPods { job: name, source })
        }
    };
    let mut list = read(format!("batch.kubernetes.io/controller-uid={uid}"))
        .await?
        .items;
    if list.is_empty() {
        list = read(format!("controller-uid={uid}")).await?.items;
    }
    let (mut list, strangers): (Vec<Pod>, Vec<Pod>) = list.into_iter().partition(|p| owned_by(p, job));
    for pod in &strangers {
        tracing::warn!(
            job = %name,
            pod = pod.metadata.name.as_deref().unwrap_or_default(),
            "ignoring a Pod with the Job's labels that the Job does not own"
        );
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn job(uid: &str) -> Job {
        let mut job = Job::default();
        job.metadata.name = Some("frames-1-package".into());
        job.metadata.uid = Some(uid.into());
        job
    }

    fn pod(owner: Option<(&str, &str, bool)>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.owner_references = owner.map(|(kind, uid, controller)| {
            vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: kind.into(),
                name: "frames-1-package".into(),
                uid: uid.into(),
                controller: Some(controller),
                block_owner_deletion: Some(true),
            }]
        });
        pod
    }

    #[test]
    fn only_a_pod_controlled_by_the_job_itself_is_its_pod() {
        let job = job("job-uid");
        assert!(owned_by(&pod(Some(("Job", "job-uid", true))), &job));
        assert!(
            !owned_by(&pod(None), &job),
            "labels alone do not make a Pod the Job's"
        );
        assert!(!owned_by(&pod(Some(("Job", "other-uid", true))), &job));
        assert!(!owned_by(&pod(Some(("Job", "job-uid", false))), &job));
        assert!(!owned_by(&pod(Some(("ReplicaSet", "job-uid", true))), &job));
        let mut no_uid = job.clone();
        no_uid.metadata.uid = None;
        assert!(!owned_by(&pod(Some(("Job", "job-uid", true))), &no_uid));
    }
}
