//! Reflector stores of DriftMonitors and DriftEvents for the API. The API keeps its own watches (not the
//! controllers'), so every replica answers reads, leader or not. Does I/O (watches) when started.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use futures::StreamExt;
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::api::v1alpha1::{DriftEvent, DriftMonitor};

/// The watched monitors and events, one store per watched namespace (or one for all).
#[derive(Clone)]
pub struct ApiStores {
    monitors: Vec<Store<DriftMonitor>>,
    events: Vec<Store<DriftEvent>>,
    ready: Arc<AtomicBool>,
}

/// The watch tasks; dropping this stops them.
pub struct StoreTasks(Vec<JoinHandle<()>>);

impl Drop for StoreTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn watch<K>(api: Api<K>, tasks: &mut Vec<JoinHandle<()>>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff())
        .applied_objects()
        .for_each(|item| async move {
            if let Err(err) = item {
                tracing::debug!(error = %err, "API store watch error (retrying)");
            }
        });
    tasks.push(tokio::spawn(stream));
    reader
}

impl ApiStores {
    /// Starts watching `namespaces` (empty: all namespaces).
    pub fn start(client: &Client, namespaces: &[String]) -> (Self, StoreTasks) {
        let mut tasks = Vec::new();
        let mut monitors = Vec::new();
        let mut events = Vec::new();
        if namespaces.is_empty() {
            monitors.push(watch(Api::<DriftMonitor>::all(client.clone()), &mut tasks));
            events.push(watch(Api::<DriftEvent>::all(client.clone()), &mut tasks));
        } else {
            for ns in namespaces {
                monitors.push(watch(
                    Api::<DriftMonitor>::namespaced(client.clone(), ns),
                    &mut tasks,
                ));
                events.push(watch(
                    Api::<DriftEvent>::namespaced(client.clone(), ns),
                    &mut tasks,
                ));
            }
        }
        let ready = Arc::new(AtomicBool::new(false));
        {
            let ready = ready.clone();
            let (monitors, events) = (monitors.clone(), events.clone());
            tasks.push(tokio::spawn(async move {
                for store in &monitors {
                    if store.wait_until_ready().await.is_err() {
                        return;
                    }
                }
                for store in &events {
                    if store.wait_until_ready().await.is_err() {
                        return;
                    }
                }
                ready.store(true, Ordering::Relaxed);
            }));
        }
        (
            Self {
                monitors,
                events,
                ready,
            },
            StoreTasks(tasks),
        )
    }

    /// Whether every store has seen its initial list.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Waits until every store has seen its initial list.
    pub async fn wait_until_ready(&self) {
        for store in &self.monitors {
            let _ = store.wait_until_ready().await;
        }
        for store in &self.events {
            let _ = store.wait_until_ready().await;
        }
    }

    pub fn events(&self) -> Vec<Arc<DriftEvent>> {
        self.events.iter().flat_map(|s| s.state()).collect()
    }

    pub fn monitors(&self) -> Vec<Arc<DriftMonitor>> {
        self.monitors.iter().flat_map(|s| s.state()).collect()
    }

    pub fn event(&self, namespace: &str, name: &str) -> Option<Arc<DriftEvent>> {
        let key = ObjectRef::new(name).within(namespace);
        self.events.iter().find_map(|s| s.get(&key))
    }

    pub fn monitor(&self, namespace: &str, name: &str) -> Option<Arc<DriftMonitor>> {
        let key = ObjectRef::new(name).within(namespace);
        self.monitors.iter().find_map(|s| s.get(&key))
    }
}
