#!/usr/bin/env bash
# scripts/check-deploy.sh — checks deploy/ (issue 15, item 5); run by
# scripts/test.sh. Prints "N passed, M failed" at the end.
#
#   1. promtool check config deploy/prometheus/prometheus.yml (and the rule
#      file it loads)
#   2. promtool check rules deploy/prometheus/alerts.yml
#   3. promtool test rules deploy/prometheus/alerts.test.yml
#   4. the Grafana dashboard's structure, and every query of it parsed by
#      promtool (as recording rules, Grafana's variables filled in)
#   5. every metric name and selector label of the dashboard and the rules
#      against a live /metrics: a test server (scripts/testserver.sh) runs a
#      small sale (join, poll, admission, holds, dev-checkout payment, a
#      released hold, a webhook delivered to a local receiver), then its
#      /metrics is scraped and compared (deploy/check_promql.py)
#   6. every dashboard query and rule expression evaluated by a real
#      Prometheus that scrapes that server every second and loads the rules:
#      no evaluation errors (vector matching, duplicate series), all rules
#      healthy
#
# Installs what is missing with apt-get: prometheus (for promtool) and
# python3-yaml. The server binary is target/debug/floodgate, built first
# unless TESTSERVER_NO_BUILD=1 (see scripts/testserver.sh).
#
# Environment:
#   DEPLOY_PENDING_METRICS  metric names promised but not exported yet:
#                           reported, not failed (space-separated)
#   DEPLOY_KEEP_SCRAPE=FILE keep the scrape there

set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$ROOT"

PENDING="${DEPLOY_PENDING_METRICS-}"

say() { printf '[check-deploy] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root to run: $*"
    fi
}
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "need $*, and apt-get is unavailable: install it by hand"
    say "installing $* (apt-get)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

command -v promtool >/dev/null 2>&1 || apt_install prometheus
command -v promtool >/dev/null 2>&1 || die "promtool still missing after installing prometheus"
PY=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then PY="$candidate"; break; fi
done
if [[ -z "$PY" ]]; then
    apt_install python3-yaml
    /usr/bin/python3 -c 'import yaml' || die "python3-yaml did not install"
    PY=/usr/bin/python3
fi

passed=0 failed=0
TMP="$(mktemp -d)"
step() {
    local name="$1"; shift
    local out rc=0
    out="$("$@" 2>&1)" || rc=$?
    if ((rc == 0)); then
        passed=$((passed + 1))
        printf 'ok   %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'FAIL %s\n' "$name"
    fi
    [[ -z "$out" ]] || printf '%s\n' "$out" | sed 's/^/     /'
}

RULES=deploy/prometheus/alerts.yml
DASH=deploy/grafana/floodgate.json

step "promtool check config deploy/prometheus/prometheus.yml" promtool check config deploy/prometheus/prometheus.yml
step "promtool check rules $RULES" promtool check rules "$RULES"
step "promtool test rules deploy/prometheus/alerts.test.yml" promtool test rules deploy/prometheus/alerts.test.yml
step "dashboard structure; a firing and a quiet test case for every alert" \
    "$PY" deploy/check_promql.py lint --rules "$RULES" --dashboard "$DASH" \
    --tests deploy/prometheus/alerts.test.yml --emit-rules "$TMP/dashboard-rules.yml"
if [[ -s "$TMP/dashboard-rules.yml" ]]; then
    step "dashboard queries parse (promtool check rules)" promtool check rules "$TMP/dashboard-rules.yml"
fi

# ---------------------------------------------------------------------------
# A live scrape after a small sale
# ---------------------------------------------------------------------------

# A webhook endpoint that takes every delivery, so deliveries and their
# latency are exported.
HOOK_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$PY" -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$HOOK_PORT" &
HOOK_PID=$!
PROM_PID=""
ts_extra_cleanup() {
    kill "$HOOK_PID" 2>/dev/null || true
    wait "$HOOK_PID" 2>/dev/null || true
    if [[ -n "$PROM_PID" ]]; then
        kill "$PROM_PID" 2>/dev/null || true
        wait "$PROM_PID" 2>/dev/null || true
    fi
    rm -rf -- "$TMP"
}
trap ts_extra_cleanup EXIT

# shellcheck source=scripts/testserver.sh
source "$ROOT/scripts/testserver.sh"
TS_WEBHOOK_URL="http://127.0.0.1:$HOOK_PORT/hook" testserver_start check-deploy

# A Prometheus of our own (the prometheus package's server), scraping the
# test server every second with the shipped rules loaded.
PROM_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
cat >"$TMP/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ "$ROOT/$RULES" ]
scrape_configs:
  - job_name: floodgate
    static_configs: [ { targets: [ "127.0.0.1:$TS_PORT" ] } ]
YAML
PROM_BIN="$(command -v prometheus || true)"
if [[ -n "$PROM_BIN" ]]; then
    "$PROM_BIN" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
    PROM_PID=$!
fi

api() { # METHOD PATH TOKEN [BODY] — prints the body, fails on a non-2xx
    local args=(-sS -f --max-time 10 -X "$1")
    [[ -n "$3" ]] && args+=(-H "Authorization: Bearer $3")
    [[ -n "${4:-}" ]] && args+=(-H 'Content-Type: application/json' -H "Idempotency-Key: check-$RANDOM$RANDOM" --data-binary "$4")
    curl "${args[@]}" "$TS_BASE_URL$2"
}

sale="$(testserver_http POST /admin/v1/sales 201 '{
  "name": "check-deploy", "units": { "count": 6 }, "per_user_limit": 2, "hold_ttl_seconds": 120,
  "waiting_room": true, "shuffle_prequeue": false,
  "admission": { "admit_per_second": 50, "max_active": 10, "admission_ttl_seconds": 60, "abandon_after_seconds": 60 } }' \
    | jq -r .id)" || die "could not create the sale"
say "sale $sale"

# visitor: join, poll until admitted, hold QUANTITY; prints "<hold id> <hold token>"
visitor() {
    local joined qt status at held
    joined="$(api POST "/api/v1/sales/$sale/queue" "")" || return 1
    qt="$(jq -r .queue_token <<<"$joined")"
    for _ in $(seq 1 100); do
        status="$(api GET "/api/v1/sales/$sale/queue/status" "$qt")" || return 1
        at="$(jq -r '.admission_token // empty' <<<"$status")"
        [[ -n "$at" ]] && break
        sleep 0.1
    done
    [[ -n "$at" ]] || { say "not admitted within 10 s"; return 1; }
    held="$(api POST "/api/v1/sales/$sale/holds" "$at" "{\"quantity\": $1}")" || return 1
    jq -r '.id + " " + .hold_token' <<<"$held"
}
read -r hold1 token1 < <(visitor 2) || die "first visitor failed"
api POST "/api/v1/holds/$hold1/dev-checkout" "$token1" >/dev/null || die "dev checkout failed"
read -r hold2 token2 < <(visitor 1) || die "second visitor failed"
api DELETE "/api/v1/holds/$hold2" "$token2" >/dev/null || die "could not release the hold"
api GET "/api/v1/sales/$sale" "" >/dev/null || die "could not read the sale"
curl -sS -o /dev/null "$TS_BASE_URL/api/v1/sales/no-such-sale" || true

# The background jobs write the gauges once a second and deliver the events:
# scrape until a delivery and the sale's gauges are there (at most 10 s).
SCRAPE="$TMP/metrics.txt"
for _ in $(seq 1 40); do
    curl -sS -f --max-time 5 "$TS_BASE_URL/metrics" >"$SCRAPE" || die "GET /metrics failed"
    if grep -q '^floodgate_webhook_deliveries_total{.*outcome="delivered".*} [1-9]' "$SCRAPE" \
        && grep -q "^floodgate_units{.*sale=\"$sale\"" "$SCRAPE" \
        && grep -q "^floodgate_admission_rate{.*kind=\"measured\"" "$SCRAPE"; then
        break
    fi
    sleep 0.25
done
[[ -n "${DEPLOY_KEEP_SCRAPE:-}" ]] && cp -- "$SCRAPE" "$DEPLOY_KEEP_SCRAPE"
step "promtool check metrics (the live scrape)" promtool check metrics <"$SCRAPE"
# shellcheck disable=SC2086  # PENDING is a list of names
step "metric names and labels of $DASH and $RULES against the live /metrics" \
    "$PY" deploy/check_promql.py names --rules "$RULES" --dashboard "$DASH" --scrape "$SCRAPE" --pending $PENDING

if [[ -n "$PROM_PID" ]]; then
    step "dashboard queries and rules evaluated by Prometheus" \
        "$PY" deploy/check_promql.py evaluate --rules "$RULES" --dashboard "$DASH" --prometheus "http://127.0.0.1:$PROM_PORT"
else
    failed=$((failed + 1))
    echo "FAIL prometheus (the server) is missing; the prometheus package should have installed it"
fi

echo "deploy checks: $passed passed, $failed failed"
echo "$passed passed, $failed failed"
((failed == 0))
