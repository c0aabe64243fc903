//! Prometheus metrics: reconcile health, per-check counters and histograms, and drift gauges computed at
//! scrape time from the reflector stores (deleted monitors disappear; a restart loses nothing). No I/O.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, RwLock},
};

use jiff::Timestamp;
use kube::{ResourceExt, runtime::reflector::Store};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
    core::{Collector, Desc},
    proto::MetricFamily,
};

use crate::api::v1alpha1::{DriftEvent, DriftMonitor, Phase, condition};

/// Default metric name prefix (the original design's names).
pub const DEFAULT_PREFIX: &str = "video_ai";

/// The longest gap in seconds between the slots of a cron `schedule` in `time_zone` after `now` (the
/// controller's schedule logic, handed in so that this module does not depend on the controller).
pub type IntervalOf = fn(schedule: &str, time_zone: Option<&str>, now: Timestamp) -> Option<f64>;

/// Distinct (schedule, time zone) pairs whose interval is remembered between scrapes.
const INTERVAL_CACHE: usize = 4096;

/// One metric family the controller exports, as registered (for the reference docs and their tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricInfo {
    /// Full name, prefix included.
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Label names, in registration order.
    pub labels: Vec<String>,
    pub help: String,
}

/// The Prometheus type of a collector, known from its Rust type.
trait Kind {
    const KIND: &'static str;
}
impl Kind for HistogramVec {
    const KIND: &'static str = "histogram";
}
impl Kind for IntCounterVec {
    const KIND: &'static str = "counter";
}
impl Kind for GaugeVec {
    const KIND: &'static str = "gauge";
}
// The scrape-time collector holds only `GaugeVec`s.
impl Kind for SharedCollector {
    const KIND: &'static str = "gauge";
}

/// Registers `collector` and records what it exports.
fn register<C: Collector + Kind + Clone + 'static>(
    registry: &Registry,
    prefix: &str,
    catalogue: &mut Vec<MetricInfo>,
    collector: &C,
) -> Result<(), prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    catalogue.extend(collector.desc().into_iter().map(|desc| MetricInfo {
        name: format!("{prefix}_{}", desc.fq_name),
        kind: C::KIND,
        labels: desc.variable_labels.clone(),
        help: desc.help.clone(),
    }));
    Ok(())
}

/// All metrics of the controller.
pub struct Metrics {
    registry: Registry,
    catalogue: Vec<MetricInfo>,
    /// `<prefix>_drift_check_duration_seconds{namespace,monitor}`.
    pub check_duration: HistogramVec,
    /// `<prefix>_drift_detected_total{namespace,monitor}`.
    pub drift_detected: IntCounterVec,
    /// `<prefix>_drift_check_failures_total{namespace,monitor,kind}`.
    pub check_failures: IntCounterVec,
    /// `<prefix>_retraining_triggered_total{namespace,monitor}`.
    pub retraining_triggered: IntCounterVec,
    /// `<prefix>_retraining_failed_total{namespace,monitor}`.
    pub retraining_failed: IntCounterVec,
    /// `<prefix>_controller_reconcile_total{controller}`.
    pub reconciles: IntCounterVec,
    /// `<prefix>_controller_reconcile_errors_total{controller,error}`.
    pub reconcile_errors: IntCounterVec,
    /// `<prefix>_controller_reconcile_duration_seconds{controller}`.
    pub reconcile_duration: HistogramVec,
    stores: Arc<StoreCollector>,
}

impl Metrics {
    /// Creates and registers every metric under `prefix` (e.g. `video_ai`).
    pub fn new(prefix: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some(prefix.to_string()), None)?;
        let labels = &["namespace", "monitor"];
        let check_duration = HistogramVec::new(
            HistogramOpts::new("drift_check_duration_seconds", "Wall time of drift checks.").buckets(vec![
                0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ]),
            labels,
        )?;
        let drift_detected = IntCounterVec::new(
            Opts::new(
                "drift_detected_total",
                "Checks in which at least one detector fired.",
            ),
            labels,
        )?;
        let check_failures = IntCounterVec::new(
            Opts::new("drift_check_failures_total", "Checks that failed, by error kind."),
            &["namespace", "monitor", "kind"],
        )?;
        let retraining_triggered = IntCounterVec::new(
            Opts::new("retraining_triggered_total", "Retraining hand-offs delivered."),
            labels,
        )?;
        let retraining_failed = IntCounterVec::new(
            Opts::new("retraining_failed_total", "Retraining hand-offs that failed."),
            labels,
        )?;
        let reconciles = IntCounterVec::new(
            Opts::new("controller_reconcile_total", "Reconcile runs."),
            &["controller"],
        )?;
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "controller_reconcile_errors_total",
                "Reconcile runs that failed, by step.",
            ),
            &["controller", "error"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new(
                "controller_reconcile_duration_seconds",
                "Duration of reconcile runs.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["controller"],
        )?;
        let stores = Arc::new(StoreCollector::new()?);
        let mut catalogue = Vec::new();
        register(&registry, prefix, &mut catalogue, &check_duration)?;
        register(&registry, prefix, &mut catalogue, &drift_detected)?;
        register(&registry, prefix, &mut catalogue, &check_failures)?;
        register(&registry, prefix, &mut catalogue, &retraining_triggered)?;
        register(&registry, prefix, &mut catalogue, &retraining_failed)?;
        register(&registry, prefix, &mut catalogue, &reconciles)?;
        register(&registry, prefix, &mut catalogue, &reconcile_errors)?;
        register(&registry, prefix, &mut catalogue, &reconcile_duration)?;
        register(
            &registry,
            prefix,
            &mut catalogue,
            &SharedCollector(stores.clone()),
        )?;
        Ok(Self {
            registry,
            catalogue,
            check_duration,
            drift_detected,
            check_failures,
            retraining_triggered,
            retraining_failed,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            stores,
        })
    }

    /// Every metric family registered, with its full name, type and labels. The scrape-time gauges are
    /// listed even before a monitor has status (when `/metrics` does not show them yet).
    pub fn catalogue(&self) -> &[MetricInfo] {
        &self.catalogue
    }

    /// Adds the stores the scrape-time gauges are computed from (one pair per watched namespace scope).
    pub fn watch_stores(&self, monitors: Store<DriftMonitor>, events: Store<DriftEvent>) {
        if let Ok(mut stores) = self.stores.stores.write() {
            stores.push((monitors, events));
        }
    }

    /// How `<prefix>_drift_schedule_interval_seconds` is computed from a monitor's schedule; without it the
    /// gauge is not exported. Set once; later calls are ignored.
    pub fn set_interval_of(&self, interval_of: IntervalOf) {
        let _ = self.stores.interval_of.set(interval_of);
    }

    /// Forgets every store (a controller run ended).
    pub fn clear_stores(&self) {
        if let Ok(mut stores) = self.stores.stores.write() {
            stores.clear();
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

type StorePair = (Store<DriftMonitor>, Store<DriftEvent>);
/// A monitor's `spec.schedule` and `spec.timeZone`.
type ScheduleKey = (String, Option<String>);

/// Gauges derived from the stores on every scrape.
struct StoreCollector {
    stores: RwLock<Vec<StorePair>>,
    lock: Mutex<()>,
    score: GaugeVec,
    threshold: GaugeVec,
    last_success: GaugeVec,
    drifted: GaugeVec,
    verdict: GaugeVec,
    combined_p: GaugeVec,
    events: GaugeVec,
    schedule_interval: GaugeVec,
    interval_of: OnceLock<IntervalOf>,
    /// Intervals by (schedule, time zone): a cron expression's longest gap does not change.
    intervals: Mutex<HashMap<ScheduleKey, Option<f64>>>,
    descs: Vec<Desc>,
}

impl StoreCollector {
    fn new() -> Result<Self, prometheus::Error> {
        let score_labels = &["method", "source", "namespace", "monitor"];
        let score = GaugeVec::new(
            Opts::new(
                "drift_score",
                "Latest drift score per detector (from status.lastResult).",
            ),
            score_labels,
        )?;
        let threshold = GaugeVec::new(
            Opts::new("drift_threshold", "Threshold the latest score was compared with."),
            score_labels,
        )?;
        let last_success = GaugeVec::new(
            Opts::new(
                "drift_last_success_timestamp_seconds",
                "Unix time of the last successful check.",
            ),
            &["namespace", "monitor"],
        )?;
        let drifted = GaugeVec::new(
            Opts::new(
                "drift_monitor_drifted",
                "1 when the last successful check found drift.",
            ),
            &["namespace", "monitor"],
        )?;
        let verdict = GaugeVec::new(
            Opts::new(
                "drift_verdict",
                "1 when the last successful check's calibrated verdict is drift (combined p-value below the \
                 monitor's alpha: at most alpha false alarms per check for the whole detector set), else 0.",
            ),
            &["namespace", "monitor"],
        )?;
        let combined_p = GaugeVec::new(
            Opts::new(
                "drift_combined_p_value",
                "The last successful check's p-value for the whole detector set (minP, both sources).",
            ),
            &["namespace", "monitor"],
        )?;
        let events = GaugeVec::new(
            Opts::new("drift_events", "DriftEvents by phase."),
            &["namespace", "monitor", "phase"],
        )?;
        let schedule_interval = GaugeVec::new(
            Opts::new(
                "drift_schedule_interval_seconds",
                "Longest gap between two scheduled checks of the monitor (spec.schedule in spec.timeZone).",
            ),
            &["namespace", "monitor"],
        )?;
        let descs = [
            &score,
            &threshold,
            &last_success,
            &drifted,
            &verdict,
            &combined_p,
            &events,
            &schedule_interval,
        ]
        .iter()
        .flat_map(|g| g.desc().into_iter().cloned())
        .collect();
        Ok(Self {
            stores: RwLock::new(Vec::new()),
            lock: Mutex::new(()),
            score,
            threshold,
            last_success,
            drifted,
            verdict,
            combined_p,
            events,
            schedule_interval,
            interval_of: OnceLock::new(),
            intervals: Mutex::new(HashMap::new()),
            descs,
        })
    }

    fn gauges(&self) -> [&GaugeVec; 8] {
        [
            &self.score,
            &self.threshold,
            &self.last_success,
            &self.drifted,
            &self.verdict,
            &self.combined_p,
            &self.events,
            &self.schedule_interval,
        ]
    }

    /// The schedule interval of a monitor, computed once per (schedule, time zone).
    fn interval(&self, monitor: &DriftMonitor) -> Option<f64> {
        let interval_of = self.interval_of.get()?;
        let key = (monitor.spec.schedule.clone(), monitor.spec.time_zone.clone());
        let mut cache = self.intervals.lock().ok()?;
        if let Some(known) = cache.get(&key) {
            return *known;
        }
        let value = interval_of(&key.0, key.1.as_deref(), Timestamp::now());
        if cache.len() >= INTERVAL_CACHE {
            cache.clear();
        }
        cache.insert(key, value);
        value
    }

    fn fill(&self) {
        for gauge in self.gauges() {
            gauge.reset();
        }
        let Ok(stores) = self.stores.read() else {
            return;
        };
        for (monitors, events) in stores.iter() {
            for monitor in monitors.state() {
                let namespace = monitor.namespace().unwrap_or_default();
                let name = monitor.name_any();
                if let Some(interval) = self.interval(&monitor) {
                    self.schedule_interval
                        .with_label_values(&[&namespace, &name])
                        .set(interval);
                }
                let Some(status) = monitor.status.as_ref() else {
                    continue;
                };
                if let Some(result) = &status.last_result {
                    for score in &result.scores {
                        let labels = [score.method.as_str(), score.source.as_str(), &namespace, &name];
                        self.score.with_label_values(&labels).set(score.score);
                        if let Some(threshold) = score.threshold {
                            self.threshold.with_label_values(&labels).set(threshold);
                        }
                    }
                    // Only results with a calibrated verdict (Jobs of this version on) export it.
                    if let Some(p) = result.combined_p_value {
                        let labels = [namespace.as_str(), name.as_str()];
                        self.combined_p.with_label_values(&labels).set(p);
                        self.verdict
                            .with_label_values(&labels)
                            .set(if result.drift_detected { 1.0 } else { 0.0 });
                    }
                }
                if let Some(time) = &status.last_successful_time {
                    self.last_success
                        .with_label_values(&[&namespace, &name])
                        .set(time.0.as_millisecond() as f64 / 1000.0);
                }
                if let Some(drifted) = status.conditions.iter().find(|c| c.type_ == condition::DRIFTED) {
                    let value = if drifted.status == "True" { 1.0 } else { 0.0 };
                    self.drifted.with_label_values(&[&namespace, &name]).set(value);
                }
            }
            for event in events.state() {
                let namespace = event.namespace().unwrap_or_default();
                let phase = event
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or(Phase::NeedsReview);
                self.events
                    .with_label_values(&[&namespace, &event.spec.monitor_ref.name, phase.as_str()])
                    .inc();
            }
        }
    }
}

#[derive(Clone)]
struct SharedCollector(Arc<StoreCollector>);

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let inner = &self.0;
        let Ok(_guard) = inner.lock.lock() else {
            return Vec::new();
        };
        inner.fill();
        inner.gauges().iter().flat_map(|g| g.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_carries_the_configured_prefix() {
        let metrics = Metrics::new("video_ai").unwrap();
        metrics.drift_detected.with_label_values(&["ml", "frames"]).inc();
        metrics
            .check_duration
            .with_label_values(&["ml", "frames"])
            .observe(2.0);
        let text = metrics.render();
        assert!(text.contains("video_ai_drift_detected_total{monitor=\"frames\",namespace=\"ml\"} 1"));
        assert!(text.contains("video_ai_drift_check_duration_seconds_bucket"));
    }

    /// A monitor whose status holds `result` (JSON of `status.lastResult`).
    fn monitor(name: &str, result: serde_json::Value) -> DriftMonitor {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "driftwatch.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {
                "schedule": "0 2 * * *",
                "source": {"qdrant": {"url": "http://q:6334", "collection": "frames"}},
                "windows": {"reference": {"duration": "7d"}, "comparison": {"duration": "24h"}}
            },
            "status": {"lastResult": result}
        }))
        .unwrap()
    }

    fn result(drifted: bool, combined: Option<f64>) -> serde_json::Value {
        let mut r = serde_json::json!({
            "checkId": "c", "windows": {"reference": {}, "comparison": {}},
            "samples": {"reference": 10, "comparison": 10},
            "scores": [{"method": "emd", "source": "embeddings", "score": 0.2, "drifted": true}],
            "driftDetected": drifted, "durationSeconds": 1.0
        });
        if let Some(p) = combined {
            r["combinedPValue"] = p.into();
            r["alpha"] = 0.05.into();
        }
        r
    }

    #[test]
    fn the_calibrated_verdict_and_combined_p_value_are_exported_per_monitor() {
        use kube::runtime::{reflector, watcher};
        let metrics = Metrics::new("video_ai").unwrap();
        let (monitors, mut writer) = reflector::store::<DriftMonitor>();
        for m in [
            monitor("drifting", result(true, Some(0.004))),
            monitor("calm", result(false, Some(0.31))),
            // A result of an older Job (no combined p-value): no verdict gauge, whatever it said.
            monitor("old", result(true, None)),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(m));
        }
        let (events, _) = reflector::store::<DriftEvent>();
        metrics.watch_stores(monitors, events);
        let text = metrics.render();
        assert!(
            text.contains("video_ai_drift_verdict{monitor=\"drifting\",namespace=\"ml\"} 1"),
            "{text}"
        );
        assert!(text.contains("video_ai_drift_verdict{monitor=\"calm\",namespace=\"ml\"} 0"));
        assert!(
            text.contains("video_ai_drift_combined_p_value{monitor=\"drifting\",namespace=\"ml\"} 0.004")
        );
        assert!(text.contains("video_ai_drift_combined_p_value{monitor=\"calm\",namespace=\"ml\"} 0.31"));
        assert!(!text.contains("video_ai_drift_verdict{monitor=\"old\""));
        assert!(!text.contains("video_ai_drift_combined_p_value{monitor=\"old\""));
    }

    /// Stand-in for the controller's schedule logic: hourly and daily expressions only.
    fn interval_of(schedule: &str, _tz: Option<&str>, _now: Timestamp) -> Option<f64> {
        match schedule {
            "0 * * * *" => Some(3600.0),
            "0 2 * * *" => Some(86_400.0),
            _ => None,
        }
    }

    #[test]
    fn every_monitor_exports_its_schedule_interval() {
        use kube::runtime::{reflector, watcher};
        let metrics = Metrics::new("video_ai").unwrap();
        metrics.set_interval_of(interval_of);
        let (monitors, mut writer) = reflector::store::<DriftMonitor>();
        for (name, schedule) in [
            ("hourly", "0 * * * *"),
            ("daily", "0 2 * * *"),
            ("broken", "not cron"),
        ] {
            let mut m = monitor(name, result(false, None));
            m.spec.schedule = schedule.to_string();
            writer.apply_watcher_event(&watcher::Event::Apply(m));
        }
        let (events, _) = reflector::store::<DriftEvent>();
        metrics.watch_stores(monitors, events);
        let text = metrics.render();
        assert!(
            text.contains(
                "video_ai_drift_schedule_interval_seconds{monitor=\"hourly\",namespace=\"ml\"} 3600"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "video_ai_drift_schedule_interval_seconds{monitor=\"daily\",namespace=\"ml\"} 86400"
            )
        );
        assert!(
            !text.contains("video_ai_drift_schedule_interval_seconds{monitor=\"broken\""),
            "no interval for a schedule that does not parse"
        );
    }

    #[test]
    fn the_catalogue_names_every_family_with_the_type_it_is_rendered_with() {
        let metrics = Metrics::new("video_ai").unwrap();
        let catalogue = metrics.catalogue();
        let two = ["ml", "frames"];
        metrics.check_duration.with_label_values(&two).observe(1.0);
        metrics.drift_detected.with_label_values(&two).inc();
        metrics
            .check_failures
            .with_label_values(&["ml", "frames", "EmptyWindow"])
            .inc();
        metrics.retraining_triggered.with_label_values(&two).inc();
        metrics.retraining_failed.with_label_values(&two).inc();
        metrics.reconciles.with_label_values(&["DriftMonitor"]).inc();
        metrics
            .reconcile_errors
            .with_label_values(&["DriftMonitor", "apply_job"])
            .inc();
        metrics
            .reconcile_duration
            .with_label_values(&["DriftMonitor"])
            .observe(0.1);
        let rendered: Vec<(String, String)> = metrics
            .render()
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_once(' '))
            .map(|(name, kind)| (name.to_string(), kind.to_string()))
            .collect();
        assert_eq!(rendered.len(), 8, "{rendered:?}");
        for (name, kind) in &rendered {
            assert!(
                catalogue.iter().any(|m| &m.name == name && m.kind == kind),
                "{name} ({kind}) is rendered but not in the catalogue as such"
            );
        }
        // What an empty store renders nothing for: the scrape-time gauges.
        let unrendered: Vec<&MetricInfo> = catalogue
            .iter()
            .filter(|m| !rendered.iter().any(|(name, _)| name == &m.name))
            .collect();
        assert!(!unrendered.is_empty());
        assert!(unrendered.iter().all(|m| m.kind == "gauge"), "{unrendered:?}");
        assert!(unrendered.iter().any(|m| m.name == "video_ai_drift_score"));
    }

    #[test]
    fn gauges_from_empty_stores_render_nothing_and_do_not_fail() {
        let metrics = Metrics::new("custom").unwrap();
        let text = metrics.render();
        assert!(!text.contains("custom_drift_score{"));
    }
}
