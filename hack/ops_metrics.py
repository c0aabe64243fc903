"""The metric names the controller exports, with the default prefix (docs/reference/metrics.md;
tests/docs_reference.rs keeps TYPES equal to the registry of src/metrics.rs). Shared by
hack/ops-check-dashboard.py and hack/ops-check-rules.py."""
import re

EXPORTED = {
    # gauges computed from the watched objects at scrape time
    "video_ai_drift_score", "video_ai_drift_threshold", "video_ai_drift_last_success_timestamp_seconds",
    "video_ai_drift_monitor_drifted", "video_ai_drift_events", "video_ai_drift_verdict",
    "video_ai_drift_combined_p_value", "video_ai_drift_schedule_interval_seconds",
    # counters and histograms
    "video_ai_drift_check_duration_seconds", "video_ai_drift_detected_total",
    "video_ai_drift_check_failures_total", "video_ai_retraining_triggered_total",
    "video_ai_retraining_failed_total", "video_ai_controller_reconcile_total",
    "video_ai_controller_reconcile_errors_total", "video_ai_controller_reconcile_duration_seconds",
}
# Type and labels of each, as exported (for the naming lint of hack/ops-test.sh: `promtool check metrics`).
TYPES = {
    "video_ai_drift_score": ("gauge", ["method", "source", "namespace", "monitor"]),
    "video_ai_drift_threshold": ("gauge", ["method", "source", "namespace", "monitor"]),
    "video_ai_drift_last_success_timestamp_seconds": ("gauge", ["namespace", "monitor"]),
    "video_ai_drift_monitor_drifted": ("gauge", ["namespace", "monitor"]),
    "video_ai_drift_events": ("gauge", ["namespace", "monitor", "phase"]),
    "video_ai_drift_verdict": ("gauge", ["namespace", "monitor"]),
    "video_ai_drift_combined_p_value": ("gauge", ["namespace", "monitor"]),
    "video_ai_drift_schedule_interval_seconds": ("gauge", ["namespace", "monitor"]),
    "video_ai_drift_check_duration_seconds": ("histogram", ["namespace", "monitor"]),
    "video_ai_drift_detected_total": ("counter", ["namespace", "monitor"]),
    "video_ai_drift_check_failures_total": ("counter", ["namespace", "monitor", "kind"]),
    "video_ai_retraining_triggered_total": ("counter", ["namespace", "monitor"]),
    "video_ai_retraining_failed_total": ("counter", ["namespace", "monitor"]),
    "video_ai_controller_reconcile_total": ("counter", ["controller"]),
    "video_ai_controller_reconcile_errors_total": ("counter", ["controller", "error"]),
    "video_ai_controller_reconcile_duration_seconds": ("histogram", ["controller"]),
}
HISTOGRAMS = {"video_ai_drift_check_duration_seconds", "video_ai_controller_reconcile_duration_seconds"}
# Used by alert rules when present, with a documented fallback when absent.
OPTIONAL = set()
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


def exposition():
    """A Prometheus text exposition with one sample series of every exported metric."""
    lines = []
    for name in sorted(EXPORTED):
        kind, labels = TYPES[name]
        lines.append(f"# HELP {name} driftwatch metric {name}.")
        lines.append(f"# TYPE {name} {kind}")
        sel = ",".join(f'{l}="x"' for l in labels)
        if kind == "histogram":
            for le in ("0.5", "1", "+Inf"):
                lines.append(f'{name}_bucket{{{sel},le="{le}"}} 1')
            lines.append(f"{name}_sum{{{sel}}} 0.3")
            lines.append(f"{name}_count{{{sel}}} 1")
        else:
            lines.append(f"{name}{{{sel}}} 1")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    assert set(TYPES) == EXPORTED, "TYPES and EXPORTED disagree"
    print(exposition(), end="")
