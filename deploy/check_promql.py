#!/usr/bin/env python3
"""deploy/check_promql.py — checks of the shipped dashboard and alert rules
against what floodgate exports (run by scripts/check-deploy.sh).

  check_promql.py lint   --rules R.yml --dashboard D.json --emit-rules OUT.yml
                         [--tests T.yml]
      Checks the dashboard's structure (panel ids, datasource, variables) and
      writes every dashboard query, with Grafana's variables filled in, as a
      recording rule to OUT.yml, so `promtool check rules OUT.yml` parses
      them as Prometheus would. With --tests: every alert of R.yml has, in
      the promtool unit tests T.yml, a case where it fires and one where it
      must not (an empty exp_alerts).

  check_promql.py names  --rules R.yml --dashboard D.json --scrape METRICS.txt
                         [--pending NAME ...]
      Extracts every metric name (and the label names of every selector)
      from the rules' and the dashboard's PromQL and compares them with a
      /metrics scrape: each name must be exported (a histogram's _bucket,
      _sum, _count count as its own), each selector's labels must be labels
      of that metric (job and instance are Prometheus's own). Names in
      --pending (promised, not exported yet) are reported but do not fail.

  check_promql.py evaluate --rules R.yml --dashboard D.json --prometheus URL
      Runs every query of the dashboard and every rule's expression on a
      real Prometheus that scrapes a server (and loads R.yml): each must
      evaluate without an error (bad vector matching, duplicate series, ...
      show only on real data), and every rule must be healthy there. Says
      how many returned data.

Prints one line per problem and "N passed, M failed"; exit status 1 on any
failure. Needs PyYAML (Debian's python3-yaml).
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

# Series Prometheus makes itself, or that the example prometheus.yml's
# blackbox job provides: allowed without being in floodgate's /metrics.
BUILTIN = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
    "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE", "probe_success", "probe_duration_seconds",
    "probe_http_status_code",
}
TARGET_LABELS = {"job", "instance"}
# Labels whose values are open-ended or only appear with traffic a small sale
# does not make (a 503, a route nobody called): their values are not checked.
# Every other label compared with = must have that value in the scrape
# (state="available", op="expire_holds", outcome="dead", ...).
OPEN_LABELS = TARGET_LABELS | {"status", "route", "method", "le", "sale", "version"}

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "atan2", "inf", "nan", "start", "end",
}
LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}

TOKEN = re.compile(
    r'\s+|(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)'
    r'|(?P<num>[0-9][0-9a-zA-Z_.]*|\.[0-9]+)'
    r'|(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'|(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],@])'
)

GRAFANA_VARS = {
    "$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
    "${__rate_interval}": "1m", "${__interval}": "1m", "${__range}": "1h",
}


def fill_grafana_vars(expr):
    """The expression as Grafana would send it: built-in intervals become
    durations, the dashboard's own variables (inside label values) a regex."""
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?", ".*", expr)


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup:
            out.append((m.lastgroup, m.group(m.lastgroup)))
    return out


def selectors(expr):
    """[(metric name, [(label, op, value)])] of every vector selector in expr."""
    toks = tokens(fill_grafana_vars(expr))
    found, i = [], 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "ident" and text.lower() in LIST_KEYWORDS and nxt[1] == "(":
            i = _skip_group(toks, i + 1, "(", ")")
            continue
        if kind == "op" and text == "[":
            i = _skip_group(toks, i, "[", "]")
            continue
        if kind == "ident" and (nxt[1] == "(" or (text in AGGREGATIONS and str(nxt[1]).lower() in ("by", "without"))):
            i += 1  # a function or an aggregation
            continue
        if kind == "ident" and text.lower() not in KEYWORDS:
            matchers = []
            i += 1
            if i < len(toks) and toks[i][1] == "{":
                end = _skip_group(toks, i, "{", "}")
                inner = [t for t in toks[i + 1:end - 1] if t[1] != ","]
                if len(inner) % 3:
                    raise ValueError("cannot read the label matchers of " + text)
                for j in range(0, len(inner), 3):
                    (_, label), (_, op), (_, value) = inner[j:j + 3]
                    matchers.append((label, op, value[1:-1]))
                i = end
            found.append((text, matchers))
            continue
        if kind == "op" and text == "{":
            raise ValueError("a selector without a metric name: " + expr)
        i += 1
    return found


def _skip_group(toks, i, open_, close):
    """Index after the group that opens at toks[i]."""
    depth = 0
    while i < len(toks):
        if toks[i][1] == open_:
            depth += 1
        elif toks[i][1] == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_}")


def rule_exprs(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    out = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            out.append((f"{path}: {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return out


def dashboard_exprs(dash):
    out = []
    for panel in all_panels(dash):
        for t in panel.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {panel.get('id')} {panel.get('title')!r} {t.get('refId')}", t["expr"]))
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)\s*", q or "")
        if not m:
            raise ValueError(f"variable {var['name']}: only label_values(selector, label) is supported: {q!r}")
        out.append((f"variable ${var['name']}", m.group(1)))
    return out


def all_panels(dash):
    for panel in dash.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def lint(args):
    failed, passed = [], 0
    with open(args.dashboard) as f:
        dash = json.load(f)
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    ids = [p.get("id") for p in all_panels(dash)]
    if len(ids) != len(set(ids)) or None in ids:
        failed.append("dashboard: panel ids are missing or repeated")
    for panel in all_panels(dash):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        if "gridPos" not in panel:
            failed.append(f"{where}: no gridPos")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            failed.append(f"{where}: datasource is not the $datasource variable")
        refs = [t.get("refId") for t in panel.get("targets", [])]
        if not refs or len(refs) != len(set(refs)):
            failed.append(f"{where}: no targets or repeated refIds")
        for t in panel.get("targets", []):
            for used in re.findall(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)", t.get("expr", "") + t.get("legendFormat", "")):
                if not used.startswith("__") and used not in variables:
                    failed.append(f"{where}: uses ${used}, which the dashboard does not define")
        passed += 1
    if args.tests:
        with open(args.rules) as f:
            alerts = [r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
        with open(args.tests) as f:
            cases = [c for t in yaml.safe_load(f)["tests"] for c in t.get("alert_rule_test", [])]
        for alert in alerts:
            fires = any(c["alertname"] == alert and c.get("exp_alerts") for c in cases)
            quiet = any(c["alertname"] == alert and not c.get("exp_alerts") for c in cases)
            if not (fires and quiet):
                failed.append(f"{args.tests}: {alert} needs a case where it fires and one where it does not "
                              f"(fires: {fires}, does not: {quiet})")
            else:
                passed += 1
    rules = []
    for i, (where, expr) in enumerate(dashboard_exprs(dash)):
        rules.append({"record": f"dashboard:query:{i}", "expr": fill_grafana_vars(expr)})
        rules[-1]["labels"] = {"where": where[:200]}
    with open(args.emit_rules, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False)
    return report(failed, passed)


def parse_scrape(path):
    """{name: {label: set of values}}, {histogram base names}."""
    names, histograms = {}, set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4 and parts[3] in ("histogram", "summary"):
                    histograms.add(parts[2])
                continue
            if line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
            if not m:
                continue
            labels = names.setdefault(m.group(1), {})
            for label, value in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""):
                labels.setdefault(label, set()).add(value)
    return names, histograms


def names(args):
    exported, histograms = parse_scrape(args.scrape)
    pending = set(args.pending or [])
    with open(args.dashboard) as f:
        dash = json.load(f)
    exprs = rule_exprs(args.rules) + dashboard_exprs(dash)
    failed, warned, seen = [], [], set()
    passed = 0
    for where, expr in exprs:
        ok = True
        for name, matchers in selectors(expr):
            labels = {label for label, _, _ in matchers}
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            seen.update((name, base))
            if name in BUILTIN:
                continue
            if name not in exported:
                if name in pending or base in pending:
                    warned.append(f"{where}: {name} is not exported yet (pending)")
                    continue
                ok = False
                failed.append(f"{where}: {name} is not in /metrics")
                continue
            unknown = labels - set(exported[name]) - TARGET_LABELS
            if unknown:
                ok = False
                failed.append(f"{where}: {name} has no label(s) {', '.join(sorted(unknown))} "
                              f"(it has: {', '.join(sorted(exported[name])) or 'none'})")
                continue
            for label, op, value in matchers:
                if op == "=" and label not in OPEN_LABELS and value not in exported[name].get(label, ()):
                    ok = False
                    failed.append(f"{where}: {name} has no series with {label}=\"{value}\" "
                                  f"({label} is one of: {', '.join(sorted(exported[name][label]))})")
        passed += ok
    for w in warned:
        print("WARN " + w)
    for n in sorted(pending):
        if n in exported or any(f"{n}_{suffix}" in exported for suffix in ("bucket", "sum", "count")):
            print(f"NOTE pending name {n} is exported: it can leave the pending list")
    unused = sorted(n for n in pending if n not in seen)
    if unused:
        print("WARN pending names no query uses: " + ", ".join(unused))
    print(f"{len({n for _, e in exprs for n, _ in selectors(e)})} metric names in {len(exprs)} expressions; "
          f"{len(exported)} series names exported ({len(histograms)} histograms)")
    return report(failed, passed)


def prometheus_get(base, path, **params):
    url = f"{base}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON
        return json.load(e)


def evaluate(args):
    base = args.prometheus.rstrip("/")
    with open(args.dashboard) as f:
        dash = json.load(f)
    # Enough scrapes for rate() and a few rule evaluations.
    deadline = time.time() + 30
    while True:
        try:
            r = prometheus_get(base, "/api/v1/query", query='count_over_time(up{job="floodgate"}[5m])')
            res = r.get("data", {}).get("result", [])
            if res and float(res[0]["value"][1]) >= 4:
                break
        except (urllib.error.URLError, ConnectionError, ValueError):
            pass
        if time.time() > deadline:
            print("FAIL Prometheus did not scrape the server 4 times within 30 s")
            return report(["no scrapes"], 0)
        time.sleep(0.5)
    failed, passed, with_data = [], 0, 0
    exprs = dashboard_exprs(dash) + rule_exprs(args.rules)
    for where, expr in exprs:
        r = prometheus_get(base, "/api/v1/query", query=fill_grafana_vars(expr))
        if r.get("status") != "success":
            failed.append(f"{where}: {r.get('errorType')}: {r.get('error')}")
            continue
        passed += 1
        with_data += bool(r["data"]["result"])
    rules = prometheus_get(base, "/api/v1/rules")
    count = 0
    for group in rules["data"]["groups"]:
        for rule in group["rules"]:
            count += 1
            if rule.get("health") != "ok":
                failed.append(f"rule {rule['name']}: {rule.get('health')} {rule.get('lastError', '')}")
    if count == 0:
        failed.append("Prometheus loaded no rules")
    print(f"{with_data} of {len(exprs)} queries returned data; {count} rules loaded")
    return report(failed, passed)


def report(failed, passed):
    for line in failed:
        print("FAIL " + line)
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["lint", "names", "evaluate"])
    p.add_argument("--rules", required=True)
    p.add_argument("--dashboard", required=True)
    p.add_argument("--emit-rules")
    p.add_argument("--tests")
    p.add_argument("--scrape")
    p.add_argument("--pending", nargs="*")
    p.add_argument("--prometheus")
    args = p.parse_args()
    if args.command == "evaluate":
        if not args.prometheus:
            p.error("evaluate needs --prometheus")
        return evaluate(args)
    if args.command == "lint":
        if not args.emit_rules:
            p.error("lint needs --emit-rules")
        return lint(args)
    if not args.scrape:
        p.error("names needs --scrape")
    return names(args)


if __name__ == "__main__":
    sys.exit(main())
