//! The operator: builds the DriftMonitor controller (owns check Jobs, watches DriftEvents) and the
//! DriftEvent controller, serves HTTP, elects a leader and shuts down gracefully. Does I/O.

pub mod clock;
pub mod drift_event;
pub mod drift_monitor;
pub mod job_status;
pub mod leader;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream};
use k8s_openapi::api::batch::v1::Job;
use kube::{
    Api, Client,
    runtime::{
        Controller,
        controller::{self, Action},
        events::{Recorder, Reporter},
        reflector::ObjectRef,
        watcher,
    },
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use self::{
    clock::{Clock, ManualClock, SystemClock},
    drift_monitor::desired::JobSettings,
    leader::LeaderElection,
};
use crate::{
    api::v1alpha1::{DriftEvent, DriftMonitor},
    error::{Error, Result},
    metrics::Metrics,
};

/// Name of the controller in Events and metrics.
pub const CONTROLLER_NAME: &str = "driftwatch-controller";

/// Settings of a controller run.
pub struct Config {
    /// Namespaces to watch; empty watches all.
    pub namespaces: Vec<String>,
    /// Check Job settings (image).
    pub jobs: JobSettings,
    /// Metrics registry (shared with the HTTP server and tests).
    pub metrics: Arc<Metrics>,
    /// Source of `now`.
    pub clock: Arc<dyn Clock>,
    /// Address of `/metrics`, `/healthz`, `/readyz`; `None` serves nothing.
    pub http_addr: Option<SocketAddr>,
    /// How the HTTP server serves (TLS, timeouts, connection limit).
    pub http: crate::http::ServeOptions,
    /// Lease-based leader election; `None` acts at once (single replica).
    pub leader_election: Option<LeaderElection>,
    /// This instance's name in Events.
    pub instance: Option<String>,
    /// Most reconciles running at once per controller.
    pub concurrency: u16,
    /// The governance surface (REST API, Alertmanager receiver, dashboard) on the HTTP server; `None`
    /// serves only `/metrics` and the probes.
    pub api: Option<crate::http::api::ApiConfig>,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub jobs: JobSettings,
}

/// Handles to a running controller for the caller (tests, main).
#[derive(Clone)]
pub struct Handles {
    /// Becomes true once the stores synced (or while standing by for leadership).
    pub ready: Arc<AtomicBool>,
    /// Becomes true while this instance holds the lease (always, without leader election).
    pub leading: Arc<AtomicBool>,
    /// The bound HTTP address, once serving.
    pub http_addr: Arc<std::sync::Mutex<Option<SocketAddr>>>,
}

impl Handles {
    /// Handles in their initial state (not ready, not leading, not serving).
    pub fn new() -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(false)),
            leading: Arc::new(AtomicBool::new(false)),
            http_addr: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// The bound HTTP address, once serving.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr.lock().ok().and_then(|a| *a)
    }
}

impl Default for Handles {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the operator until `shutdown` resolves (graceful: running reconciles finish).
///
/// # Errors
/// Fails when the HTTP port cannot be bound, leader election cannot reach the API server, or the lease is
/// lost (the process should exit and be restarted).
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    run_with(client, config, Handles::new(), shutdown).await
}

/// [`run`] that reports readiness, leadership and the HTTP address through `handles`.
pub async fn run_with(
    client: Client,
    config: Config,
    handles: Handles,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if let Some(settings) = &config.leader_election {
        settings.validate()?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).map(|r| r.is_ok()).await;
    };
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
    }

    let mut http_task = None;
    let mut api_tasks = None;
    if let Some(addr) = config.http_addr {
        let (listener, local) = crate::http::bind(addr).await.map_err(Error::Http)?;
        info!(%local, "serving /metrics, /healthz and /readyz");
        let mut router = crate::http::router(crate::http::AppState {
            metrics: config.metrics.clone(),
            ready: handles.ready.clone(),
        });
        if let Some(api) = &config.api {
            let (governance, tasks) =
                crate::http::api::start(client.clone(), &config.namespaces, api.clone());
            router = router.merge(governance);
            api_tasks = Some(tasks);
        }
        if let Ok(mut slot) = handles.http_addr.lock() {
            *slot = Some(local);
        }
        http_task = Some(tokio::spawn(crate::http::serve(
            listener,
            router,
            config.http.clone(),
            stopped(stop_rx.clone()),
        )));
    }

    let lock = config
        .leader_election
        .clone()
        .map(|settings| Arc::new(leader::LeaseLock::new(client.clone(), settings)));
    let (lost_tx, lost_rx) = watch::channel(false);
    let mut renew_task = None;
    if let Some(lock) = &lock {
        handles.ready.store(true, Ordering::Relaxed);
        let mut stop = stop_rx.clone();
        let Some(acquired) = lock.acquire(&mut stop).await else {
            if let Some(task) = http_task {
                let _ = task.await;
            }
            return Ok(());
        };
        info!(identity = %lock.settings().identity, "acquired the leader lease");
        handles.ready.store(false, Ordering::Relaxed);
        let lock = lock.clone();
        let lost_tx = lost_tx.clone();
        renew_task = Some(tokio::spawn(async move {
            match lock.hold(acquired).await {
                leader::Lost::TakenBy(holder) => warn!(%holder, "another instance took the leader lease"),
                leader::Lost::RenewDeadline => {
                    warn!("could not renew the leader lease within the renew deadline; stopping")
                }
            }
            let _ = lost_tx.send(true);
        }));
    }
    handles.leading.store(true, Ordering::Relaxed);

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: CONTROLLER_NAME.to_string(),
            instance: config.instance.clone(),
        },
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder,
        metrics: config.metrics.clone(),
        clock: config.clock.clone(),
        jobs: config.jobs.clone(),
    });

    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };
    config
        .metrics
        .set_interval_of(drift_monitor::schedule::interval_seconds);
    let (halt_tx, halt_rx) = watch::channel(false);
    let mut runs: Vec<BoxFuture<'static, ()>> = Vec::new();
    let mut stores = Vec::new();
    for scope in scopes {
        let api = |client: Client| match &scope {
            Some(ns) => (
                Api::<DriftMonitor>::namespaced(client.clone(), ns),
                Api::<Job>::namespaced(client.clone(), ns),
                Api::<DriftEvent>::namespaced(client, ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client),
            ),
        };
        let (monitors, jobs, events) = api(client.clone());
        let monitors_of_events = monitors.clone();
        let jobs_of = |client: &Client| match &scope {
            Some(ns) => Api::<Job>::namespaced(client.clone(), ns),
            None => Api::<Job>::all(client.clone()),
        };
        let job_watch = watcher::Config::default().labels(&format!(
            "{}={}",
            drift_monitor::desired::labels::COMPONENT,
            drift_monitor::desired::labels::CHECK_COMPONENT
        ));
        let mut monitor_controller = Controller::new(monitors, watcher::Config::default())
            .with_config(controller::Config::default().concurrency(config.concurrency))
            .owns(jobs, job_watch)
            .watches(events.clone(), watcher::Config::default(), |event: DriftEvent| {
                let namespace = event.metadata.namespace.clone()?;
                Some(ObjectRef::<DriftMonitor>::new(&event.spec.monitor_ref.name).within(&namespace))
            })
            .graceful_shutdown_on(stopped(halt_rx.clone()));
        if let Some(jumps) = config.clock.jumps() {
            monitor_controller = monitor_controller.reconcile_all_on(jumps);
        }
        let package_watch = watcher::Config::default().labels(&format!(
            "{}={}",
            drift_monitor::desired::labels::COMPONENT,
            drift_event::desired::PACKAGE_COMPONENT
        ));
        let event_controller = Controller::new(events, watcher::Config::default())
            .with_config(controller::Config::default().concurrency(config.concurrency))
            .owns(jobs_of(&client), package_watch);
        // Events in review show what approving would trigger: a monitor change re-reconciles them.
        let events_in_review = event_controller.store();
        let event_controller = event_controller
            .watches(
                monitors_of_events,
                watcher::Config::default(),
                move |monitor: DriftMonitor| {
                    let namespace = monitor.metadata.namespace.clone();
                    let name = monitor.metadata.name.clone().unwrap_or_default();
                    events_in_review
                        .state()
                        .into_iter()
                        .filter(|e| {
                            e.metadata.namespace == namespace
                                && e.spec.monitor_ref.name == name
                                && drift_monitor::raise::in_review(e)
                        })
                        .map(|e| ObjectRef::from_obj(&*e))
                        .collect::<Vec<_>>()
                },
            )
            .graceful_shutdown_on(stopped(halt_rx.clone()));
        let monitor_store = monitor_controller.store();
        let event_store = event_controller.store();
        config
            .metrics
            .watch_stores(monitor_store.clone(), event_store.clone());
        stores.push((monitor_store, event_store));
        runs.push(
            monitor_controller
                .run(drift_monitor::reconcile, drift_monitor::error_policy, ctx.clone())
                .for_each(|result| async move {
                    if let Err(err) = result {
                        log_controller_error("DriftMonitor", &err);
                    }
                })
                .boxed(),
        );
        runs.push(
            event_controller
                .run(drift_event::reconcile, drift_event::error_policy, ctx.clone())
                .for_each(|result| async move {
                    if let Err(err) = result {
                        log_controller_error("DriftEvent", &err);
                    }
                })
                .boxed(),
        );
    }

    let synced_stores = stores.clone();
    {
        let ready = handles.ready.clone();
        tokio::spawn(async move {
            // NB: each wait is retried with a fresh future, so a missed wake-up cannot leave us unready.
            for (monitors, events) in stores {
                loop {
                    let wait = async {
                        monitors
                            .wait_until_ready()
                            .await
                            .and(events.wait_until_ready().await)
                    };
                    match tokio::time::timeout(Duration::from_millis(250), wait).await {
                        Ok(Ok(())) => break,
                        Ok(Err(_)) => return,
                        Err(_) => {}
                    }
                }
            }
            ready.store(true, Ordering::Relaxed);
            info!("caches synced; ready");
        });
    }

    // On shutdown the controllers halt gracefully (running reconciles finish). When the lease is lost they
    // are dropped at once: another instance may take over after the lease duration, and nothing of this
    // one may act by then.
    {
        let halt_tx = halt_tx.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).map(|r| r.is_ok()).await;
            debug!("halting the controllers");
            let _ = halt_tx.send(true);
        });
    }
    // A controller stopped before its cache synced would wait for the sync forever (its watch is cut by the
    // halt); it has not reconciled anything yet, so it is dropped instead.
    let stopped_before_sync = {
        let mut stop = stop_rx.clone();
        async move {
            let _ = stop.wait_for(|s| *s).map(|r| r.is_ok()).await;
            let synced = synced_stores.iter().all(|(monitors, events)| {
                monitors.wait_until_ready().now_or_never().is_some()
                    && events.wait_until_ready().now_or_never().is_some()
            });
            if synced {
                std::future::pending::<()>().await;
            }
        }
    };
    let lost = {
        let mut lost_rx = lost_rx.clone();
        tokio::select! {
            () = stream::iter(runs).for_each_concurrent(None, |run| run) => false,
            _ = lost_rx.wait_for(|l| *l).map(|r| r.is_ok()) => true,
            () = stopped_before_sync => {
                debug!("stopped before the caches synced");
                false
            }
        }
    };
    handles.leading.store(false, Ordering::Relaxed);
    debug!(lost, "controllers stopped");
    config.metrics.clear_stores();
    if let Some(task) = renew_task {
        task.abort();
    }
    if let Some(lock) = &lock
        && !lost
        && let Err(err) = lock.release().await
    {
        warn!(error = %err, "could not release the leader lease");
    }
    let _ = stop_tx.send(true);
    if let Some(task) = http_task {
        debug!("waiting for the HTTP server to stop");
        let _ = task.await;
    }
    drop(api_tasks);
    if lost {
        return Err(Error::LeadershipLost);
    }
    info!("controller stopped");
    Ok(())
}

fn log_controller_error<E: std::fmt::Display, Q: std::fmt::Display>(
    kind: &str,
    err: &controller::Error<E, Q>,
) {
    match err {
        controller::Error::ObjectNotFound(_) => {}
        other => warn!(kind, error = %other, "reconcile failed"),
    }
}

/// Backoff after a failed reconcile: conflicts retry at once-ish, other errors after a few seconds.
pub fn retry_after(error: &Error) -> Action {
    if error.is_conflict() {
        Action::requeue(Duration::from_millis(200))
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
