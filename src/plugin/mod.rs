//! `kubectl drift`: list, inspect and decide DriftEvents, run a monitor now, show its score history.
//! Talks to the API server as the kubeconfig's user; decisions name that user (SelfSubjectReview).

pub mod render;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

use crate::api::v1alpha1::{Decision, DriftEvent, DriftMonitor};

/// The annotation that asks the controller for one check now.
pub const RUN_NOW_ANNOTATION: &str = "driftwatch.dev/run-now";

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-drift",
    bin_name = "kubectl drift",
    version,
    about = "Review drift events and approve retraining"
)]
pub struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List drift events: event, monitor, score, phase, decision, age.
    List {
        /// Only events of this monitor.
        #[arg(long)]
        monitor: Option<String>,
    },
    /// Show one event: scores, windows, decision, retraining outcome and audit trail.
    Get { event: String },
    /// Approve an event: package its data and trigger retraining.
    Approve {
        event: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ignore an event: close it without action.
    Ignore {
        event: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Run a monitor's check now.
    Check { monitor: String },
    /// Recent drift scores of a monitor, with a sparkline per detector.
    History {
        monitor: String,
        /// How many recent checks.
        #[arg(long, default_value_t = 30)]
        limit: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("reading the kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    AlreadyDecided(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NothingToTrigger(String),
    #[error("the API server said: {0}")]
    Api(String),
}

impl PluginError {
    /// Process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            PluginError::Usage(_) | PluginError::Kubeconfig(_) => 2,
            PluginError::NotFound(_) => 3,
            PluginError::Forbidden(_) => 4,
            PluginError::AlreadyDecided(_) => 5,
            PluginError::NothingToTrigger(_) => 6,
            PluginError::Api(_) => 1,
        }
    }
}

/// A connected client and the namespace to work in.
pub struct Session {
    pub client: Client,
    pub namespace: String,
}

pub async fn connect(cli: &Cli) -> Result<Session, PluginError> {
    let options = KubeConfigOptions {
        context: cli.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &cli.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| PluginError::Kubeconfig(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
    let namespace = cli
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
    Ok(Session { client, namespace })
}

fn api_error(err: kube::Error, what: &str) -> PluginError {
    match err {
        kube::Error::Api(status) if status.code == 404 => PluginError::NotFound(format!("{what} not found")),
        kube::Error::Api(status) if status.code == 403 => PluginError::Forbidden(status.message),
        kube::Error::Api(status) => PluginError::Api(status.message),
        other => PluginError::Api(other.to_string()),
    }
}

/// The caller's user name, from a SelfSubjectReview.
pub async fn whoami(client: &Client) -> Result<String, PluginError> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| api_error(e, "SelfSubjectReview"))?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| PluginError::Api("the API server did not say who you are (SelfSubjectReview)".into()))
}

/// Runs a command and returns what to print.
pub async fn run(cli: &Cli, session: &Session) -> Result<String, PluginError> {
    let now = jiff::Timestamp::now();
    let events = |client: &Client| -> Api<DriftEvent> {
        if cli.all_namespaces {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), &session.namespace)
        }
    };
    let ns_events = Api::<DriftEvent>::namespaced(session.client.clone(), &session.namespace);
    let ns_monitors = Api::<DriftMonitor>::namespaced(session.client.clone(), &session.namespace);
    match &cli.command {
        Command::List { monitor } => {
            let mut list = events(&session.client)
                .list(&ListParams::default())
                .await
                .map_err(|e| api_error(e, "driftevents"))?
                .items;
            if let Some(monitor) = monitor {
                list.retain(|e| &e.spec.monitor_ref.name == monitor);
            }
            list.sort_by(|a, b| {
                b.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&a.metadata.creation_timestamp.as_ref().map(|t| t.0))
                    .then_with(|| a.metadata.name.cmp(&b.metadata.name))
            });
            if list.is_empty() {
                return Ok(if cli.all_namespaces {
                    "No drift events found.\n".to_string()
                } else {
                    format!("No drift events found in namespace {}.\n", session.namespace)
                });
            }
            Ok(render::events_table(&list, cli.all_namespaces, now.as_second()))
        }
        Command::Get { event } => {
            let event = ns_events
                .get(event)
                .await
                .map_err(|e| api_error(e, &format!("DriftEvent {}/{event}", session.namespace)))?;
            Ok(render::event_details(&event))
        }
        Command::Approve { event, reason } => {
            decide(session, &ns_events, event, Decision::Approve, reason).await
        }
        Command::Ignore { event, reason } => {
            decide(session, &ns_events, event, Decision::Ignore, reason).await
        }
        Command::Check { monitor } => {
            let value = now.to_string();
            let patch = json!({"metadata": {"annotations": {RUN_NOW_ANNOTATION: value}}});
            ns_monitors
                .patch(monitor, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| match api_error(e, &format!("DriftMonitor {}/{monitor}", session.namespace)) {
                    PluginError::Forbidden(message) => PluginError::Forbidden(format!(
                        "you may not run DriftMonitor {}/{monitor}: running a check needs patch on driftmonitors \
                         (ClusterRole driftwatch-editor).\n{message}",
                        session.namespace
                    )),
                    other => other,
                })?;
            Ok(format!(
                "driftmonitor.driftwatch.dev/{monitor} check requested ({RUN_NOW_ANNOTATION}: {value})\n"
            ))
        }
        Command::History { monitor, limit } => {
            let monitor = ns_monitors
                .get(monitor)
                .await
                .map_err(|e| api_error(e, &format!("DriftMonitor {}/{monitor}", session.namespace)))?;
            Ok(render::monitor_history(&monitor, *limit))
        }
    }
}

async fn decide(
    session: &Session,
    events: &Api<DriftEvent>,
    name: &str,
    decision: Decision,
    reason: &Option<String>,
) -> Result<String, PluginError> {
    let what = format!("DriftEvent {}/{name}", session.namespace);
    let event = events.get(name).await.map_err(|e| api_error(e, &what))?;
    if let Some(existing) = &event.spec.approval {
        return Err(already_decided(&what, existing));
    }
    if decision == Decision::Approve
        && let Some(why) = event.nothing_to_trigger()
    {
        return Err(PluginError::NothingToTrigger(format!(
            "{what} has nothing to trigger: {why}.\nUse `kubectl drift ignore {name}`, or set spec.retraining on \
             DriftMonitor {} first.",
            event.spec.monitor_ref.name
        )));
    }
    let user = whoami(&session.client).await?;
    let mut approval = json!({"decision": decision.as_str(), "approvedBy": user});
    if let Some(reason) = reason.as_deref().filter(|r| !r.is_empty()) {
        approval["reason"] = json!(reason);
    }
    // The resourceVersion makes the write conditional: a decision made meanwhile wins and is reported.
    let patch = json!({
        "metadata": {"resourceVersion": event.metadata.resource_version},
        "spec": {"approval": approval}
    });
    match events
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(format!(
            "driftevent.driftwatch.dev/{name} {} by {user}\n",
            match decision {
                Decision::Approve => "approved",
                Decision::Ignore => "ignored",
            }
        )),
        Err(kube::Error::Api(status))
            if status.code == 409 || status.message.contains("already been decided") =>
        {
            match events.get(name).await.ok().and_then(|e| e.spec.approval) {
                Some(existing) => Err(already_decided(&what, &existing)),
                None => Err(PluginError::Api(status.message)),
            }
        }
        Err(kube::Error::Api(status)) if status.message.contains("nothing to trigger") => {
            Err(PluginError::NothingToTrigger(status.message))
        }
        Err(kube::Error::Api(status)) if status.code == 403 => Err(PluginError::Forbidden(format!(
            "{user} may not decide {what} (monitor {}): deciding needs the approve verb on that DriftMonitor \
             (ClusterRole driftwatch-approver, or a Role with resourceNames) and patch on driftevents.\n{}",
            event.spec.monitor_ref.name, status.message
        ))),
        Err(err) => Err(api_error(err, &what)),
    }
}

fn already_decided(what: &str, existing: &crate::api::v1alpha1::Approval) -> PluginError {
    PluginError::AlreadyDecided(format!(
        "{what} was already decided: {} by {}{}; a decision cannot be changed",
        existing.decision.as_str(),
        existing.approved_by,
        existing
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    ))
}
