#!/usr/bin/env python3
"""Checks config/grafana/driftwatch.json: valid JSON; templated by namespace and monitor; every query
names at least one metric and only metrics the controller exports (hack/ops_metrics.py, which
tests/docs_reference.rs keeps equal to src/metrics.rs); every domain query is filtered by $namespace and
$monitor; every query is valid PromQL (written to a rules file for `promtool check rules`, after replacing
Grafana's variables).

Usage: ops-check-dashboard.py DASHBOARD.json RULES_OUT.yml  (then run promtool on RULES_OUT.yml)
Exit status 1 with a message per problem."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_metrics import CONTROLLER_HEALTH, EXPORTED, metric_names  # noqa: E402


def main():
    path, rules_out = sys.argv[1], sys.argv[2]
    problems = []
    try:
        with open(path) as f:
            dash = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"{path}: not valid JSON: {e}")
        return 1
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    for needed in ("namespace", "monitor"):
        if needed not in variables:
            problems.append(f"no template variable ${needed}")
    queries = []  # (where, expr)
    for name, var in variables.items():
        if var.get("type") == "query":
            q = var.get("query")
            queries.append((f"variable ${name}", q.get("query") if isinstance(q, dict) else q))

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                queries.append((f"panel {p.get('title')!r} target {t.get('refId')}", t.get("expr")))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    panel_queries = [q for q in queries if q[0].startswith("panel")]
    if len(panel_queries) < 8:
        problems.append(f"only {len(panel_queries)} panel queries; the dashboard lost panels")
    rules = []
    for i, (where, expr) in enumerate(queries):
        if not expr:
            problems.append(f"{where}: empty query")
            continue
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: names no driftwatch metric: {expr}")
        for n in sorted(names - EXPORTED):
            problems.append(f"{where}: metric {n} is not exported by the controller")
        if where.startswith("panel") and not names <= CONTROLLER_HEALTH:
            for var in ("$namespace", "$monitor"):
                if var not in expr:
                    problems.append(f"{where}: not filtered by {var}: {expr}")
        if where.startswith("variable"):
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", expr.strip())
            if not m:
                problems.append(f"{where}: expected label_values(<selector>, <label>): {expr}")
                continue
            expr = m.group(1)
        promql = (expr.replace("$__rate_interval", "5m").replace("$__range", "1d")
                  .replace("$namespace", ".*").replace("$monitor", ".*"))
        rules.append({"record": f"dashboard:query_{i}", "expr": promql})
    with open(rules_out, "w") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
    for p in problems:
        print(f"{path}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
