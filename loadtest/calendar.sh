#!/usr/bin/env bash
# loadtest/calendar.sh — the sessions calendar while a timed-entry sale sells
# (issue 16: GET /api/v1/sales/{sale}/sessions p99 < 50 ms while selling).
#
# Usage: loadtest/calendar.sh [--no-build] [--duration S] [--hold-connections C]
#
# A release floodgate (FLOODGATE_ENV=test, 2 workers, its own database and
# Redis prefix) gets a 90-day sale of half-hourly sessions, 10:00-18:00 in
# Europe/Amsterdam (1,440 sessions of 100 units, 144,000 units); then for S
# seconds (default 20) wrk holds one unit in a random session
# (loadtest/wrk/hold.lua with FG_SESSIONS) with C connections (default 8: a
# sale selling a few hundred units a second; 32 saturates both cores with
# holds alone) while a second
# wrk reads calendar pages of 100 sessions (a month of slots: 100 sessions
# from a random day) with 8 connections. Prints both WRK_RESULT lines and the
# audit. Everything talks to 127.0.0.1 and stops by itself.

set -euo pipefail
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
cd -- "$ROOT"

BUILD=1 DURATION=20 HOLD_CONNS=8
while (($#)); do
    case "$1" in
        --no-build) BUILD=0 ;;
        --duration) DURATION="$2"; shift ;;
        --hold-connections) HOLD_CONNS="$2"; shift ;;
        *) echo "usage: $0 [--no-build] [--duration S] [--hold-connections C]" >&2; exit 2 ;;
    esac
    shift
done
PORT="${FG_PORT:-18180}"
ADMIN_KEY=test-admin-key
OUT="$ROOT/loadtest/out/calendar-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p -- "$OUT"
say() { printf '\n==> [calendar %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

eval "$("$ROOT/scripts/services.sh" env)"
if ((BUILD)); then
    cargo build --release -p floodgate --bin floodgate
    cargo build --release -p floodgate-loadtest --bins
fi
DB=floodgate_calendar
BASE_URL="${FLOODGATE__DATABASE__URL%/*}"
psql "$FLOODGATE__DATABASE__URL" -XqAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$FLOODGATE__DATABASE__URL" -XqAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD)" | tee "$OUT/summary.txt"
FLOODGATE_ENV=test FLOODGATE__SERVER__PORT="$PORT" FLOODGATE__SERVER__HOST=127.0.0.1 FLOODGATE__SERVER__WORKERS=2 \
    FLOODGATE__DATABASE__URL="$BASE_URL/$DB" FLOODGATE__REDIS__KEY_PREFIX="fgcal$$" \
    RUST_LOG="info,floodgate::access=off" target/release/floodgate >"$OUT/floodgate.log" 2>&1 &
PIDS+=($!)
export FG_BASE="http://127.0.0.1:$PORT"
target/release/fgdrive wait-ready --timeout 60

say "a 90-day sale of half-hourly sessions (1,440 x 100 units)"
started=$(date +%s.%N)
SALE="$(curl -sf -X POST "$FG_BASE/admin/v1/sales" -H "Authorization: Bearer $ADMIN_KEY" \
    -H 'Content-Type: application/json' -d '{"name": "calendar bench", "units": {"count": 100},
      "waiting_room": false, "per_user_limit": 4, "hold_ttl_seconds": 600,
      "prices": {"currency": "EUR", "categories": [{"name": "Standard", "amount": 2500}]},
      "sessions": {"time_zone": "Europe/Amsterdam", "recurrence": {"from": "2027-01-15", "to": "2027-04-14",
        "start": "10:00", "end": "18:00", "every_minutes": 30}}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
echo "sale $SALE created in $(python3 -c "print(round($(date +%s.%N) - $started, 2))") s" | tee -a "$OUT/summary.txt"
target/release/fgdrive join --sale "$SALE" --count 8000 --concurrency 32 --token admission \
    --out "$OUT/admission-tokens.txt" >"$OUT/joins.txt" 2>&1

say "${DURATION}s: holds in random sessions ($HOLD_CONNS connections) and calendar pages (8 connections)"
cat >"$OUT/calendar.lua" <<'LUA'
local dir = os.getenv("FG_WRK_DIR") .. "/"
dofile(dir .. "common.lua")
function request()
  local day = math.random(0, 89)
  local from = os.date("!%Y-%m-%dT00:00:00Z", os.time({year = 2027, month = 1, day = 15 + day, hour = 12}))
  return wrk.format("GET", wrk.path .. "?limit=100&from=" .. from)
end
LUA
FG_SESSIONS=1440 FG_TOKENS="$OUT/admission-tokens.txt" FG_WRK_THREADS=1 wrk -t1 -c"$HOLD_CONNS" -d"${DURATION}s" --timeout 10s \
    -s loadtest/wrk/hold.lua "$FG_BASE/api/v1/sales/$SALE/holds" >"$OUT/wrk-holds.txt" 2>&1 &
HOLDS=$!
FG_WRK_DIR="$ROOT/loadtest/wrk" wrk -t1 -c8 -d"${DURATION}s" --timeout 10s -s "$OUT/calendar.lua" \
    "$FG_BASE/api/v1/sales/$SALE/sessions" >"$OUT/wrk-calendar.txt" 2>&1
wait "$HOLDS"
for f in holds calendar; do
    echo "$f: $(sed -n 's/^WRK_RESULT //p' "$OUT/wrk-$f.txt")" | tee -a "$OUT/summary.txt"
done
curl -sf "$FG_BASE/admin/v1/sales/$SALE/audit" -H "Authorization: Bearer $ADMIN_KEY" \
    | python3 -c 'import json,sys; a=json.load(sys.stdin); print("audit ok:", a["ok"], a["units"])' | tee -a "$OUT/summary.txt"
echo "raw output: $OUT"
