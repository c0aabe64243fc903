//! What approving a DriftEvent hands off to: the DriftMonitor's retraining settings and source, copied into
//! the event's status while it is in review (so reviewers see where an approval sends data, and that there
//! is nothing to trigger when the monitor has no `spec.retraining`) and frozen when the approval is
//! recorded. Pure: takes the monitor as read; no I/O.

use crate::api::v1alpha1::{DriftMonitor, NO_RETRAINING_TARGET, RetrainingSpec, RetrainingTarget};

/// `s3://<bucket>/<prefix>` of the settings.
pub fn summary(retraining: &RetrainingSpec) -> String {
    format!("s3://{}/{}", retraining.s3.bucket, retraining.s3.prefix)
}

/// Nothing to trigger, and why.
pub fn nothing(reason: String) -> RetrainingTarget {
    RetrainingTarget {
        summary: NO_RETRAINING_TARGET.to_string(),
        reason: Some(reason),
        ..RetrainingTarget::default()
    }
}

/// Why approving an event of the monitor `name` would trigger nothing, given what was read.
pub fn no_retraining_reason(name: &str) -> String {
    format!(
        "DriftMonitor {name} has no spec.retraining: approving would trigger nothing; Ignore the event, or set \
         spec.retraining.s3 and .webhook on the monitor first"
    )
}

/// The target an approval of an event of the monitor `name` would hand off to, from the monitor as read
/// (`None`: it does not exist).
pub fn of_monitor(name: &str, monitor: Option<&DriftMonitor>) -> RetrainingTarget {
    let Some(monitor) = monitor else {
        return nothing(format!(
            "DriftMonitor {name} no longer exists: approving would trigger nothing"
        ));
    };
    let Some(retraining) = &monitor.spec.retraining else {
        return nothing(no_retraining_reason(name));
    };
    RetrainingTarget {
        summary: summary(retraining),
        reason: None,
        retraining: Some(retraining.clone()),
        source: Some(monitor.spec.source.qdrant.clone()),
        seed: Some(monitor.spec.sampling.seed),
        sampling: Some(monitor.spec.sampling.clone()),
        comparison_duration: Some(monitor.spec.windows.comparison.duration.clone()),
        monitor_generation: monitor.metadata.generation,
        approved_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::DriftMonitorSpec;

    fn monitor(retraining: bool) -> DriftMonitor {
        let mut spec = serde_json::json!({
            "schedule": "0 * * * *",
            "source": {"qdrant": {"url": "http://qdrant:6334", "collection": "frames"}},
            "windows": {"reference": {"duration": "7d"}, "comparison": {"duration": "1h"}},
            "sampling": {"seed": 7}
        });
        if retraining {
            spec["retraining"] = serde_json::json!({
                "s3": {"bucket": "batches", "prefix": "drift/"},
                "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}},
                "sampleSize": 500
            });
        }
        let spec: DriftMonitorSpec = serde_json::from_value(spec).unwrap();
        let mut m = DriftMonitor::new("frames", spec);
        m.metadata.generation = Some(4);
        m
    }

    #[test]
    fn a_monitor_with_retraining_gives_its_settings_source_and_seed() {
        let target = of_monitor("frames", Some(&monitor(true)));
        assert_eq!(target.summary, "s3://batches/drift/");
        assert!(target.configured());
        assert_eq!(target.retraining.as_ref().unwrap().sample_size, 500);
        assert_eq!(target.source.as_ref().unwrap().collection, "frames");
        assert_eq!(
            (
                target.seed,
                target.comparison_duration.as_deref(),
                target.monitor_generation
            ),
            (Some(7), Some("1h"), Some(4))
        );
    }

    #[test]
    fn a_monitor_without_retraining_or_no_monitor_gives_nothing_to_trigger_with_the_reason() {
        let target = of_monitor("frames", Some(&monitor(false)));
        assert_eq!(target.summary, NO_RETRAINING_TARGET);
        assert!(!target.configured());
        assert!(
            target
                .reason
                .as_deref()
                .unwrap()
                .contains("has no spec.retraining")
        );
        let gone = of_monitor("frames", None);
        assert_eq!(gone.summary, NO_RETRAINING_TARGET);
        assert!(gone.reason.as_deref().unwrap().contains("no longer exists"));
    }
}
