"""The metric names the controller exports (DESIGN §5; names as in the controller's src/metrics.rs), with
the default prefix. Shared by hack/ops-check-dashboard.py and hack/ops-check-rules.py."""
import re

EXPORTED = {
    # gauges computed from the watched objects at scrape time
    "video_ai_drift_score", "video_ai_drift_threshold", "video_ai_drift_last_success_timestamp_seconds",
    "video_ai_drift_monitor_drifted", "video_ai_drift_events",
    # counters and histograms
    "video_ai_drift_check_duration_seconds", "video_ai_drift_detected_total",
    "video_ai_drift_check_failures_total", "video_ai_retraining_triggered_total",
    "video_ai_retraining_failed_total", "video_ai_controller_reconcile_total",
    "video_ai_controller_reconcile_errors_total", "video_ai_controller_reconcile_duration_seconds",
}
HISTOGRAMS = {"video_ai_drift_check_duration_seconds", "video_ai_controller_reconcile_duration_seconds"}
# Used by alert rules when present, with a documented fallback when absent (DriftCheckStale).
OPTIONAL = {"video_ai_drift_schedule_interval_seconds"}
CONTROLLER_HEALTH = {m for m in EXPORTED if m.startswith("video_ai_controller_")}


def metric_names(expr):
    """The driftwatch metric names a PromQL expression uses (histogram series folded into the family)."""
    names = set()
    for name in re.findall(r"\bvideo_ai_[a-z0-9_]+", expr):
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
                base = name[: -len(suffix)]
        names.add(base)
    return names
