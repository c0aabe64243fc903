//! Deterministic name of an event's retrain-packaging Job, shared by the controller (which creates the Job)
//! and the REST API (which answers `retraining_job_id` with it). Pure.

use crate::{api::v1alpha1::DriftEvent, controller::drift_monitor::desired::fit};

/// Longest Job name (it becomes a label value on the Job's Pods).
const MAX_JOB_NAME: usize = 63;
const PACKAGE_SUFFIX: &str = "-package";

/// The retrain-packaging Job of an event: `<event>-package`, hash-shortened to 63 characters. Approving
/// through `POST /retrain` answers with this name as `retraining_job_id`.
pub fn packaging_job_name_for(event_name: &str) -> String {
    format!(
        "{}{PACKAGE_SUFFIX}",
        fit(event_name, MAX_JOB_NAME - PACKAGE_SUFFIX.len())
    )
}

/// [`packaging_job_name_for`] of the event.
pub fn packaging_job_name(event: &DriftEvent) -> String {
    packaging_job_name_for(event.metadata.name.as_deref().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_event_name_gets_a_package_suffix() {
        assert_eq!(
            packaging_job_name_for("frames-202611260200"),
            "frames-202611260200-package"
        );
    }

    #[test]
    fn a_long_event_name_is_shortened_deterministically_to_a_valid_job_name() {
        let long = format!("{}-202611260200", "m".repeat(120));
        let a = packaging_job_name_for(&long);
        assert!(a.len() <= 63, "{a}");
        assert!(a.ends_with("-package"));
        assert_eq!(a, packaging_job_name_for(&long));
        assert_ne!(
            a,
            packaging_job_name_for(&format!("{}-202611260300", "m".repeat(120)))
        );
    }
}
