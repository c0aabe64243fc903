#!/usr/bin/env python3
"""The chart's user roles and admission policies (approval, Secret references) are the standalone ones of
config/rbac/ (package feature): same ClusterRole rules (as sets of group/resource/verb), same policies by
name with the same match constraints, match conditions and validations (expressions compared with whitespace normalized), the exemption naming the release's
ServiceAccount instead of the standalone default.

Usage: ops-check-rbac.py RENDERED.yaml CONFIG_RBAC_DIR
RENDERED.yaml: `helm template driftwatch charts/driftwatch -n driftwatch-system
  --set serviceAccount.name=driftwatch-controller` (so the exemption names the same ServiceAccount)."""
import glob
import os
import re
import sys

import yaml


def docs(paths):
    out = []
    for p in paths:
        with open(p) as f:
            out += [d for d in yaml.safe_load_all(f) if d]
    return out


def rules(role):
    return {(g, r, v) for rule in role.get("rules", []) for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


def norm(text):
    return re.sub(r"\s+", " ", str(text)).replace("( ", "(").replace(" )", ")").strip()


def policy_view(policy):
    spec = policy["spec"]
    return {
        "failurePolicy": spec.get("failurePolicy"),
        "matchConstraints": spec.get("matchConstraints"),
        "matchConditions": sorted((c["name"], norm(c["expression"])) for c in spec.get("matchConditions", [])),
        "validations": [(norm(v["expression"]), norm(v.get("messageExpression")), v.get("reason"))
                        for v in spec.get("validations", [])],
    }


def main():
    rendered = docs([sys.argv[1]])
    standalone = docs(sorted(glob.glob(os.path.join(sys.argv[2], "*.yaml"))))
    problems = []
    chart_roles = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ClusterRole"}
    config_roles = [d for d in standalone if d["kind"] == "ClusterRole"]
    if not config_roles:
        problems.append("config/rbac has no ClusterRoles")
    for role in config_roles:
        name = role["metadata"]["name"]
        if name not in chart_roles:
            problems.append(f"ClusterRole {name} of config/rbac is not in the chart")
        elif rules(role) != rules(chart_roles[name]):
            problems.append(f"ClusterRole {name} differs: config/rbac {sorted(rules(role) - rules(chart_roles[name]))} "
                            f"vs chart {sorted(rules(chart_roles[name]) - rules(role))}")
    # Policies pair up by name (release "driftwatch": the chart's names equal the standalone ones).
    chart_policies = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ValidatingAdmissionPolicy"}
    config_policies = {d["metadata"]["name"]: d for d in standalone if d["kind"] == "ValidatingAdmissionPolicy"}
    if not config_policies or sorted(chart_policies) != sorted(config_policies):
        problems.append(f"policies differ: chart {sorted(chart_policies)}, config/rbac {sorted(config_policies)}")
    for name in sorted(set(chart_policies) & set(config_policies)):
        a, b = policy_view(chart_policies[name]), policy_view(config_policies[name])
        for key in a:
            if a[key] != b[key]:
                problems.append(f"policy {name} {key} differs:\n  chart:       {a[key]}\n  config/rbac: {b[key]}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
