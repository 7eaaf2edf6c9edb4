#!/usr/bin/env python3
"""The Grafana dashboard and the alerting rules against real tools from
Debian's prometheus package:

  rules        promtool check rules, and promtool test rules
               (tests/deploy/alerts.test.yaml: each alert fires and stays quiet)
  live         a real Prometheus on 127.0.0.1 scrapes a live hashgate under
               simulated load (mock pool, simulated miners) and evaluates the
               rules; every dashboard panel's query and every rule's
               expression returns data through the HTTP query API

  test_monitoring.py --hashgate PATH [--dashboard FILE] {rules,live}

A rule's expression is checked with its comparisons made non-filtering
(`x > 0.05` becomes `x > bool 0.05`): on a healthy farm an alert has nothing
to say, but every metric and label it reads must be there. A panel or rule
that reads a metric hashgate does not export returns nothing and fails, and
the test names the metric.
"""
import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Failure, Proc, Scenario, check, free_port, PY, SUPPORT  # noqa: E402

FILES = os.path.join(ROOT, "helm", "hashgate", "files")
DASHBOARD = os.path.join(FILES, "hashgate-dashboard.json")
RULES = os.path.join(FILES, "hashgate-alerts.yaml")
RULE_TESTS = os.path.join(HERE, "alerts.test.yaml")
# Grafana's variables, as Grafana would fill them for a recent range.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m", "$instance": ".*"}
SCRAPES = 20  # samples of every series before the queries


def sh(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_rules(args):
    r = sh(["promtool", "check", "rules", RULES])
    check(r.returncode == 0, "promtool check rules: %s" % (r.stdout + r.stderr))
    n = int(re.search(r"(\d+) rules found", r.stdout).group(1))
    r = sh(["promtool", "test", "rules", RULE_TESTS])
    check(r.returncode == 0 and "SUCCESS" in r.stdout, "promtool test rules:\n%s" % (r.stdout + r.stderr))
    alerts = set(re.findall(r"^\s+- alert: (\w+)", open(RULES).read(), re.M))
    tests = open(RULE_TESTS).read()
    for a in sorted(alerts):
        # Each alert is expected to fire somewhere (a non-empty exp_alerts)
        # and to stay quiet somewhere (exp_alerts: []).
        blocks = re.findall(r"alertname: %s\n\s+exp_alerts:( \[\])?" % a, tests)
        check("" in blocks and " []" in blocks, "alerts.test.yaml lacks a firing and a quiet case for %s" % a)
    print("promtool: %d rules check; unit tests pass, each of %d alerts fires and stays quiet" % (n, len(alerts)))


# ---------------------------------------------------------------- live

def bool_form(expr):
    """expr with every comparison operator given the bool modifier (outside
    label matchers and strings), so it keeps every series it reads."""
    out, i, depth, quote = [], 0, 0, None
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = None
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            m = re.match(r"(==|!=|>=|<=|>|<)(\s*bool\b)?", expr[i:])
            if m:
                out.append(m.group(1) + " bool")
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out)


def grafana_expr(expr):
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    return expr


def panel_queries(dashboard):
    """(panel title, expr) for every query of every panel (rows included)."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                check(t.get("expr"), "panel %r has a target without an expression" % p.get("title"))
                out.append((p["title"], t["expr"]))
            walk(p.get("panels", []))
    walk(dashboard["panels"])
    return out


def check_dashboard_shape(dashboard):
    ids, titles = set(), set()
    for p in dashboard["panels"]:
        check(p["id"] not in ids, "duplicate panel id %s" % p["id"])
        ids.add(p["id"])
        g = p["gridPos"]
        check(0 <= g["x"] and g["x"] + g["w"] <= 24, "panel %r is wider than the grid" % p["title"])
        if p["type"] == "row":
            continue
        check(p["title"] not in titles, "two panels titled %r" % p["title"])
        titles.add(p["title"])
        check(p["targets"], "panel %r has no query" % p["title"])
        check(p["datasource"]["uid"] == "${datasource}", "panel %r does not use the datasource variable" % p["title"])
        refs = [t["refId"] for t in p["targets"]]
        check(len(set(refs)) == len(refs), "panel %r repeats a refId" % p["title"])
    names = {v["name"] for v in dashboard["templating"]["list"]}
    check({"datasource", "instance"} <= names, "dashboard variables: %s" % names)


class Prometheus:
    def __init__(self, workdir, target, rules):
        self.port = free_port()
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: hashgate\n    static_configs:\n      - targets: ['%s']\n"
                    % (rules, target))
        self.proc = Proc(["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(workdir, "tsdb"),
                          "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"])
        for _ in range(400):
            try:
                if self.get("/-/ready", raw=True):
                    return
            except OSError:
                pass
            check(self.proc.p.poll() is None, "prometheus exited: %s" % "\n".join(self.proc.err_lines[-10:]))
            time.sleep(0.1)
        raise Failure("prometheus never became ready")

    def get(self, path, raw=False, **params):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode()
        return body if raw else json.loads(body)

    def query(self, expr):
        try:
            r = self.get("/api/v1/query", query=expr)
        except urllib.error.HTTPError as e:
            raise Failure("query %r refused: %s" % (expr, e.read().decode()[:500]))
        check(r["status"] == "success", "query %r: %s" % (expr, r))
        return r["data"]["result"]

    def stop(self):
        self.proc.stop()


def exported_names(prom):
    return set(prom.get("/api/v1/label/__name__/values")["data"])


def check_returns_data(prom, what, expr, exported, finite):
    """Fails naming the metrics expr reads that hashgate does not export, or
    the query if it returns nothing (or, with finite, only NaN/Inf)."""
    missing = sorted(set(re.findall(r"\bhashgate_[a-z0-9_]+", expr)) - exported)
    check(not missing, "%s reads %s, which hashgate does not export" % (what, ", ".join(missing)))
    result = prom.query(expr)
    check(result, "%s returns no data: %s" % (what, expr))
    if finite:
        values = [float(s["value"][1]) for s in result]
        check(any(math.isfinite(v) for v in values), "%s returns only %s: %s" % (what, values, expr))
    return len(result)


def wait_until(prom, expr, what, polls=600):
    """Polls until expr has a positive value (a budget of polls, not a time)."""
    for _ in range(polls):
        r = prom.query(expr)
        if r and float(r[0]["value"][1]) > 0:
            return
        time.sleep(0.2)
    raise Failure("Prometheus never saw %s (%s)" % (what, expr))


def test_live(args):
    dashboard = json.load(open(args.dashboard))
    check_dashboard_shape(dashboard)
    queries = panel_queries(dashboard)
    # Easy shares (about 4,000 hashes each), a quarter of them good enough
    # for the pool; a new job every second for the fan-out.
    s = Scenario(args.hashgate, algorithm="sha256d",
                 pool_args=["--difficulty", "4e-6", "--job-interval", "1", "--clean-every", "0"],
                 config={"admin": {"bind": "127.0.0.1:0", "max_worker_labels": 3},
                         "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10}})
    prom = miners = None
    try:
        admin = s.gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "admin_listening"
                               and json.loads(l)["port"])
        prom = Prometheus(s.dir, "127.0.0.1:%d" % admin, RULES)
        # Four honest miners and one that submits under its difficulty, for
        # as long as the queries take (stopped below).
        miners = Proc([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(s.port), "--count", "5",
                       "--algorithm", "sha256d", "--duration", "600", "--misbehave", "low:1"])
        # A reload, so the reload counters moved once.
        s.gw.p.send_signal(signal.SIGHUP)
        s.gw.wait_line(lambda l: '"config_reloaded"' in l)
        for expr, what in (('sum(hashgate_shares_total{result="accepted"})', "accepted shares"),
                           ("sum(hashgate_pool_shares_total)", "pool answers"),
                           ("sum(hashgate_job_fanout_duration_seconds_count)", "job fan-outs"),
                           ('sum(hashgate_config_reloads_total{result="ok"})', "the reload"),
                           ("count_over_time(hashgate_ready[5m]) >= %d" % SCRAPES, "%d scrapes" % SCRAPES),
                           ('sum(rate(hashgate_shares_total{result="accepted"}[1m]))', "a share rate")):
            wait_until(prom, expr, what)
        exported = exported_names(prom)

        panels = 0
        for title, expr in queries:
            panels += check_returns_data(prom, "panel %r" % title, grafana_expr(expr), exported, finite=True) > 0
        # The check itself: a panel reading a metric hashgate lacks must fail.
        title, expr = queries[0]
        broken = re.sub(r"\bhashgate_[a-z0-9_]+", lambda m: m.group(0) + "_missing", expr, count=1)
        try:
            check_returns_data(prom, "panel %r" % title, grafana_expr(broken), exported, finite=True)
            raise Failure("a panel reading a missing metric passed: %s" % broken)
        except Failure as e:
            check("does not export" in str(e), "unexpected failure for the broken panel: %s" % e)

        groups = prom.get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        file_alerts = set(re.findall(r"^\s+- alert: (\w+)", open(RULES).read(), re.M))
        check({r["name"] for r in rules} == file_alerts and len(rules) == len(file_alerts),
              "Prometheus loaded %s, the file has %s" % (sorted(r["name"] for r in rules), sorted(file_alerts)))
        wait_for_rule_evaluations(prom, len(rules))
        rules = [r for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        for r in rules:
            check(r["health"] == "ok", "rule %s: health %s %s" % (r["name"], r["health"], r.get("lastError")))
            check_returns_data(prom, "rule %s" % r["name"], bool_form(r["query"]), exported, finite=False)
        firing = sorted(r["name"] for r in rules if r["state"] != "inactive")
    finally:
        if miners:
            miners.stop(signal.SIGKILL, timeout=5)
        if prom:
            prom.stop()
    evs, _ = s.finish()
    print("dashboard: %d queries in %d panels return data; rules: %d loaded, evaluated, every expression returns "
          "data (pending/firing on this load: %s); a panel reading a missing metric fails as it should" %
          (len(queries), len({t for t, _ in queries}), len(rules), ", ".join(firing) or "none"))


def wait_for_rule_evaluations(prom, n, polls=300):
    for _ in range(polls):
        rules = [r for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        if len(rules) == n and all(not r["lastEvaluation"].startswith("0001") for r in rules):
            return
        time.sleep(0.2)
    raise Failure("Prometheus did not evaluate the rules")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hashgate", required=True)
    ap.add_argument("--dashboard", default=DASHBOARD, help="the dashboard JSON to check (default: the chart's)")
    ap.add_argument("test", choices=["rules", "live"])
    args = ap.parse_args()
    try:
        {"rules": test_rules, "live": test_live}[args.test](args)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
