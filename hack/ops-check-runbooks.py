#!/usr/bin/env python3
"""Checks that every runbook link resolves: each `runbook`/`runbook_url` annotation of the alert rules, and
each link to docs/operations.md#<anchor> in the given files (Markdown files of the given folders), must
name a heading of docs/operations.md (GitHub's anchor rules: lower case, punctuation dropped, spaces to
hyphens, repeats numbered). Every alert except the original HighDriftDetected must carry a runbook.
Usage: ops-check-runbooks.py RULES OPERATIONS_PAGE [FILE_OR_FOLDER...]"""
import os
import re
import sys

import yaml

LINK = re.compile(r"operations[.]md#([A-Za-z0-9_-]+)")


def slug(heading):
    """GitHub's heading anchor: lower case, only word characters, spaces and hyphens, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown):
    seen = {}
    found = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def main():
    rules_path, ops_path, *others = sys.argv[1:]
    known = anchors(open(ops_path, encoding="utf-8").read())
    problems = []
    rules = yaml.safe_load(open(rules_path, encoding="utf-8"))
    checked = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            annotations = rule.get("annotations", {})
            links = [v for k, v in annotations.items() if k in ("runbook", "runbook_url")]
            if not links and rule["alert"] != "HighDriftDetected":
                problems.append(f"alert {rule['alert']} has no runbook annotation")
            for link in links:
                m = LINK.search(link)
                if not m:
                    problems.append(f"alert {rule['alert']}: runbook {link!r} does not point into {ops_path}")
                    continue
                checked += 1
                if m.group(1) not in known:
                    problems.append(f"alert {rule['alert']}: runbook anchor #{m.group(1)} is not a heading "
                                    f"of {ops_path}")
    files = []
    for path in others:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path) if f.rsplit(".", 1)[-1].lower() == "md")
        else:
            files.append(path)
    for path in files:
        for number, line in enumerate(open(path, encoding="utf-8"), 1):
            for m in LINK.finditer(line):
                checked += 1
                if m.group(1) not in known:
                    problems.append(f"{path}:{number}: link to #{m.group(1)} of {ops_path} is not a heading of "
                                    "it")
    for p in problems:
        print(p)
    print(f"{checked} runbook links checked against {len(known)} headings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
