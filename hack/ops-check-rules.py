#!/usr/bin/env python3
"""Checks config/prometheus/alert.rules.yml beyond promtool: the original HighDriftDetected rule is present
(the original selector and threshold aggregated across replicas; for, severity, annotations verbatim), and every alert is covered by the
promtool unit tests with at least one expected firing that carries the namespace and monitor labels, and
every alert uses only metrics the controller exports (hack/ops_metrics.py).
Usage: ops-check-rules.py RULES TESTS"""
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_metrics import EXPORTED, OPTIONAL, metric_names  # noqa: E402

# The original rule's selector and threshold, with the gauge aggregated across controller replicas so that a
# leader change (new instance/pod labels, one scrape without the series) does not restart the hour.
ORIGINAL = {
    "alert": "HighDriftDetected",
    "expr": 'max without (instance, pod) (last_over_time('
    'video_ai_drift_score{method="kl_divergence", source="embeddings"}[5m])) > 0.1',
    "for": "1h",
    "labels": {"severity": "warning"},
    "annotations": {
        "summary": "High data drift detected (value: {{ $value }})",
        "description": "The KL divergence between reference and comparison embedding distributions has "
        "exceeded the threshold of 0.1 for over an hour.",
    },
}


def main():
    rules = yaml.safe_load(open(sys.argv[1]))
    tests = yaml.safe_load(open(sys.argv[2]))
    problems = []
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    original = [r for g in rules["groups"] if g["name"] == "ModelDriftAlerts" for r in g["rules"]
                if r.get("alert") == "HighDriftDetected"]
    if not original:
        problems.append("group ModelDriftAlerts has no HighDriftDetected rule")
    elif original[0] != ORIGINAL:
        problems.append(f"HighDriftDetected differs from the original rule: {original[0]}")
    fired = {}
    for t in tests["tests"]:
        for case in t.get("alert_rule_test", []):
            for exp in case.get("exp_alerts") or []:
                labels = exp.get("exp_labels", {})
                fired.setdefault(case["alertname"], []).append(labels)
    for a in alerts:
        names = metric_names(a["expr"])
        if not names:
            problems.append(f"alert {a['alert']} names no driftwatch metric")
        for n in sorted(names - EXPORTED - OPTIONAL):
            problems.append(f"alert {a['alert']}: metric {n} is not exported by the controller")
    for a in alerts:
        name = a["alert"]
        if name not in fired:
            problems.append(f"alert {name} is never expected to fire in the unit tests")
            continue
        if not any("namespace" in l and "monitor" in l for l in fired[name]):
            problems.append(f"alert {name}: no tested firing carries namespace and monitor labels")
    for p in problems:
        print(p)
    print(f"{len(alerts)} alerts checked")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
