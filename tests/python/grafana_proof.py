"""Proves grafana/ against a live Prometheus scraping a real Corral cluster.

Usage: grafana_proof.py --prometheus http://127.0.0.1:PORT --repository ROOT

1. The committed dashboards are what grafana/generate.py writes.
2. Lint (grafana/dashboard-linter's rules, reimplemented): a datasource variable and the
   cluster, job and instance variables; every panel titled, described, with a unit and the
   datasource variable; every query selects on job and instance and uses $__rate_interval
   for its ranges; no query names a metric the cluster does not export (the names
   Prometheus scraped from the real /metrics).
3. Every panel query (Grafana variables substituted) and every alert expression parses and
   returns data. An alert's condition is normally false, so for an alert it is the
   expression before its threshold that must return data, and the whole that must parse.

Exits 0 when all holds; otherwise prints every problem and exits 1. Queries that return
nothing are retried until --deadline seconds have passed (rates need a few scrapes).
"""
import argparse
import importlib.util
import json
import re
import sys
import time
import urllib.parse
import urllib.request

import yaml

SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$cluster": ".*",
    "$job": ".*",
    "$instance": ".*",
}
METRIC = re.compile(r"\b((?:corral|process)_[a-z0-9_]+|up)\b(?!\s*\()")
THRESHOLD = re.compile(r"\s(?:>|<|==|!=|>=|<=)\s*[-0-9.e]+\s*$")


def query(prometheus, expr):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def substitute(expr):
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


def exported_names(prometheus):
    url = f"{prometheus}/api/v1/label/__name__/values"
    with urllib.request.urlopen(url, timeout=10) as response:
        return set(json.load(response)["data"])


def lint(name, board, exported, problems):
    variables = {item["name"]: item for item in board["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append(f"{name}: no datasource variable")
    for wanted in ["cluster", "job", "instance"]:
        if wanted not in variables:
            problems.append(f"{name}: no {wanted} variable")
    for panel in board["panels"]:
        where = f"{name} / {panel.get('title') or panel.get('id')}"
        for field in ["title", "description"]:
            if not panel.get(field, "").strip():
                problems.append(f"{where}: no {field}")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{where}: no unit")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{where}: panel does not use the datasource variable")
        for target in panel["targets"]:
            expr = target["expr"]
            if target.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{where}: target does not use the datasource variable")
            for selector in ['job=~"$job"', 'instance=~"$instance"']:
                if selector not in expr:
                    problems.append(f"{where}: {expr!r} does not select {selector}")
            for window in re.findall(r"\[([^\]]+)\]", expr):
                if window not in ("$__rate_interval", "$__range"):
                    problems.append(f"{where}: range [{window}] is not $__rate_interval")
            for metric in METRIC.findall(expr):
                if metric not in exported:
                    problems.append(f"{where}: {metric} is not exported by the cluster")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--deadline", type=float, default=40)
    args = parser.parse_args()
    root = args.repository
    problems = []

    spec = importlib.util.spec_from_file_location("generate", f"{root}/grafana/generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    boards = {}
    for name, board in generate.DASHBOARDS.items():
        path = f"{root}/grafana/dashboards/{name}.json"
        with open(path) as committed:
            text = committed.read()
        if text != generate.render(board):
            problems.append(f"{path} is not what grafana/generate.py writes: run it")
        boards[name] = json.loads(text)

    exported = exported_names(args.prometheus)
    checks = []  # (where, expression that must parse, expression that must return data)
    for name, board in boards.items():
        lint(name, board, exported, problems)
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = substitute(target["expr"])
                checks.append((f"{name} / {panel['title']} / {target['refId']}", expr, expr))
    with open(f"{root}/grafana/alerts/corral.yaml") as rules_file:
        rules = yaml.safe_load(rules_file)
    for group in rules["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"].strip()
            signal = THRESHOLD.sub("", expr)
            if signal == expr:
                problems.append(f"alert {rule['alert']}: no threshold found in {expr!r}")
            for metric in METRIC.findall(expr):
                if metric not in exported:
                    problems.append(f"alert {rule['alert']}: {metric} is not exported")
            checks.append((f"alert {rule['alert']}", expr, signal))

    deadline = time.monotonic() + args.deadline
    pending = checks
    while True:
        empty = []
        for where, whole, signal in pending:
            parsed = query(args.prometheus, whole)
            if parsed.get("status") != "success":
                problems.append(f"{where}: {whole!r} fails: {parsed.get('error')}")
                continue
            answer = parsed if signal == whole else query(args.prometheus, signal)
            if answer.get("status") != "success":
                problems.append(f"{where}: {signal!r} fails: {answer.get('error')}")
            elif not answer["data"]["result"]:
                empty.append((where, whole, signal))
        if not empty or time.monotonic() > deadline:
            break
        pending = empty
        time.sleep(2)
    for where, _, signal in empty:
        problems.append(f"{where}: {signal!r} returned nothing")

    print(json.dumps({"checked": len(checks), "problems": problems}, indent=2))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
