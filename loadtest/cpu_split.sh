#!/usr/bin/env bash
# loadtest/cpu_split.sh [ROUNDS] — where the CPU of a join and of a status
# poll goes, against the constant handler, on the bench's terms: wrk -t2 -c64,
# 8 s per run, the constant handler and floodgate in turns (const, floodgate,
# floodgate, const per round), floodgate on a fresh database and server
# (scripts/testserver.sh: `FLOODGATE_ENV=test`, here with two workers and the
# background periods of config/default.toml, as in bench.sh), the status runs
# cycling through the queue tokens of WAITING (default 100,000) waiting
# visitors.
#
# Per run, in µs per request: the server's user and system time, wrk's time,
# Redis's, and the whole machine's (busy time of both cores over requests),
# from /proc. The ratio of two servers' rates is the inverse ratio of the
# machine's time per request, so this shows which part of the gap is the
# server's own work and which is the machine's speed at the time (wrk's time
# per request moves with it). Needs scripts/services.sh up and a release
# build (target/release/floodgate, const_server, fgdrive).
set -uo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROUNDS="${1:-2}"
WAITING="${WAITING:-100000}"
BIN=target/release
CONST_PORT=18191
TOKENS="$(mktemp)"

# The server as the bench runs it, started (and its database and Redis keys
# removed on exit) by scripts/testserver.sh.
while read -r kv; do export "${kv?}"; done < <(python3 loadtest/default_periods.py)
export FLOODGATE__SERVER__WORKERS=2 RUST_LOG="info,floodgate::access=off"
ts_extra_cleanup() {
    [[ -n "${CONST:-}" ]] && kill "$CONST" 2>/dev/null && wait "$CONST" 2>/dev/null
    rm -f "$TOKENS" "$TOKENS.wrk"
}
# shellcheck source=scripts/testserver.sh
source scripts/testserver.sh
FLOODGATE_BIN="$BIN/floodgate" testserver_start cpu-split || exit 1
FG="$TS_PID"
export FG_BASE="$TS_BASE_URL"
"$BIN/const_server" --port $CONST_PORT >/dev/null 2>&1 &
CONST=$!
sale() { "$BIN/fgdrive" create-sale --name "cpu-split-$1" --admit-per-second 0 --abandon-after 3600 --units 1000; }
STATUS_SALE="$(sale status)"
JOIN_SALE="$(sale join)"
sleep 1
"$BIN/fgdrive" join --sale "$STATUS_SALE" --count "$WAITING" --concurrency 64 --out "$TOKENS" >/dev/null 2>&1 \
    || { echo "joins failed" >&2; exit 1; }
REDIS_PID="$(redis-cli -u "$FLOODGATE__REDIS__URL" info server | awk -F: '/^process_id:/ {print $2}' | tr -d '\r')"

ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
# machine: busy and total ticks of all cores.
machine() { awk '/^cpu / {busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6}' /proc/stat; }

# run NAME PID URL SCRIPT — one 8 s wrk run, one line of figures.
run() {
    local name="$1" pid="$2" url="$3" script="$4" su0 ss0 su1 ss1 r0 r1 mb0 mt0 mb1 mt1 wrk_pid w0 t out
    read -r su0 ss0 < <(ticks "$pid")
    read -r r0 _ < <(ticks "$REDIS_PID")
    read -r mb0 mt0 < <(machine)
    FG_TOKENS="$TOKENS" FG_WRK_THREADS=2 wrk -t2 -c64 -d8s -s "loadtest/wrk/$script" "$url" >"$TOKENS.wrk" 2>&1 &
    wrk_pid=$!
    w0=0
    # wrk's own time, read until it exits (its last 0.1 s is lost).
    while kill -0 "$wrk_pid" 2>/dev/null; do
        if t="$(awk '{print $14 + $15}' "/proc/$wrk_pid/stat" 2>/dev/null)" && [[ -n "$t" ]]; then
            w0="$t"
        fi
        sleep 0.1
    done
    wait "$wrk_pid"
    read -r su1 ss1 < <(ticks "$pid")
    read -r r1 _ < <(ticks "$REDIS_PID")
    read -r mb1 mt1 < <(machine)
    out="$(sed -n 's/^WRK_RESULT //p' "$TOKENS.wrk")"
    python3 - "$name" "$out" "$((su1 - su0))" "$((ss1 - ss0))" "$w0" "$((r1 - r0))" "$((mb1 - mb0))" "$((mt1 - mt0))" \
        "$(getconf CLK_TCK)" <<'PY'
import json, sys
name, out = sys.argv[1], json.loads(sys.argv[2])
su, ss, w, r, mb, mt, hz = map(int, sys.argv[3:])
n = out["requests"]
us = lambda t: t / hz / n * 1e6
print(f"{name:14} {out['rps']:>8,.0f}/s | server user {us(su):5.1f} sys {us(ss):5.1f} | wrk {us(w):5.1f} "
      f"| redis {us(r):4.1f} | machine {us(mb):5.1f} µs per request, idle {100 * (mt - mb) / mt:.0f} %")
PY
}

for path in status join; do
    if [[ $path == status ]]; then
        const_url="http://127.0.0.1:$CONST_PORT/api/v1/sales/const/queue/status"
        fg_url="$FG_BASE/api/v1/sales/$STATUS_SALE/queue/status"
        script=status.lua
    else
        const_url="http://127.0.0.1:$CONST_PORT/api/v1/sales/const/queue"
        fg_url="$FG_BASE/api/v1/sales/$JOIN_SALE/queue"
        script=join.lua
    fi
    for round in $(seq "$ROUNDS"); do
        run "$path const" "$CONST" "$const_url" "$script"
        run "$path floodgate" "$FG" "$fg_url" "$script"
        run "$path floodgate" "$FG" "$fg_url" "$script"
        run "$path const" "$CONST" "$const_url" "$script"
    done
done
