//! The controller's error type: one variant per reconcile step, with a short label for metrics and events.

use crate::controller::drift_monitor::desired::DesiredError;

/// An error of one reconcile step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object has no {0}")]
    MissingObjectKey(&'static str),
    #[error("failed to list check Jobs")]
    ListJobs(#[source] kube::Error),
    #[error("failed to read the Pods of Job {job}")]
    ReadPods {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to build the check Job")]
    BuildJob(#[from] DesiredError),
    #[error("failed to apply check Job {job}")]
    ApplyJob {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to read Job {job}")]
    ReadJob {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to read DriftMonitor {name}")]
    ReadMonitor {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to delete finished Job {job}")]
    DeleteJob {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to list DriftEvents")]
    ListEvents(#[source] kube::Error),
    #[error("failed to apply DriftEvent {name}")]
    ApplyEvent {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to write the status of {kind} {name}")]
    WriteStatus {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to encode a patch")]
    Encode(#[from] serde_json::Error),
    #[error("leader election failed")]
    Lease(#[source] kube::Error),
    #[error("lost the leader lease")]
    LeadershipLost,
    #[error("invalid leader election settings")]
    LeaderSettings(#[from] crate::controller::leader::SettingsError),
    #[error("failed to serve HTTP")]
    Http(#[source] std::io::Error),
    #[error("failed to register metrics")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    /// A short stable label for metrics and Warning events.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::MissingObjectKey(_) => "missing_object_key",
            Error::ListJobs(_) => "list_jobs",
            Error::ReadPods { .. } => "read_pods",
            Error::BuildJob(_) => "build_job",
            Error::ApplyJob { .. } => "apply_job",
            Error::DeleteJob { .. } => "delete_job",
            Error::ReadJob { .. } => "read_job",
            Error::ReadMonitor { .. } => "read_monitor",
            Error::ListEvents(_) => "list_events",
            Error::ApplyEvent { .. } => "apply_event",
            Error::WriteStatus { .. } => "write_status",
            Error::Encode(_) => "encode",
            Error::Lease(_) => "lease",
            Error::LeadershipLost => "leadership_lost",
            Error::LeaderSettings(_) => "leader_settings",
            Error::Http(_) => "http",
            Error::Metrics(_) => "metrics",
        }
    }

    /// Whether the API server refused because another writer got there first (retry soon).
    pub fn is_conflict(&self) -> bool {
        let source = match self {
            Error::ApplyEvent { source, .. } | Error::WriteStatus { source, .. } => source,
            _ => return false,
        };
        matches!(source, kube::Error::Api(status) if status.code == 409)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
