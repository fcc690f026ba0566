#!/usr/bin/env bash
# loadtest/flash_join_ab.sh ROUNDS BINARY[,DRIVER]... — the flash sale's join phase,
# interleaved across server binaries (and drivers: `fgdrive` builds to compare,
# target/release/fgdrive by default): per round and binary a fresh database and
# server on port 18181 (the background periods of config/default.toml, as in
# bench.sh), the bench's fixed-rate flash sale (200,000 visitors,
# 20,000 units, 30/40/30 every 10 s, 400/s, max_active 1,000, hold TTL 30 s,
# `fgdrive flash` with concurrency 256) stopped after 40 s, then one line: when
# all visitors had joined, the status polls and joins the driver made, and
# the CPU time of the server and of the driver.
# One flash sale varies by ±40 % on a shared two-core machine; compare means
# of several interleaved rounds (RESULTS.md, session of 2026-12-03). Needs
# scripts/services.sh up and a release build (copy the binaries to compare
# out of target/release first). Example:
#   cp target/release/floodgate /tmp/fg-new; git stash; cargo build --release
#   cp target/release/floodgate /tmp/fg-old; git stash pop
#   loadtest/flash_join_ab.sh 4 /tmp/fg-old /tmp/fg-new
# or one server with two drivers:
#   loadtest/flash_join_ab.sh 4 target/release/floodgate,/tmp/drv-old target/release/floodgate,/tmp/drv-new
set -uo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
eval "$(scripts/services.sh env)"
ROUNDS="${1:?usage: flash_join_ab.sh ROUNDS BINARY...}"; shift
PG="${FLOODGATE__DATABASE__URL%/*}"
export FG_BASE=http://127.0.0.1:18181
OUT=loadtest/out/flash-join-ab-$(date -u +%Y%m%dT%H%M%SZ); mkdir -p "$OUT"
ARGS=(--visitors 200000 --units 20000 --stages 30,40,30 --stage-interval 10 --concurrency 256 --timeout 40)
for round in $(seq "$ROUNDS"); do
for arg in "$@"; do
  bin="${arg%%,*}"; drv=target/release/fgdrive
  [[ "$arg" == *,* ]] && drv="${arg#*,}"
  name="$(basename "$bin")$([[ "$arg" == *,* ]] && echo "+$(basename "$drv")")-$round"
  psql "$FLOODGATE__DATABASE__URL" -qc 'DROP DATABASE IF EXISTS ab_flash WITH (FORCE)' -c 'CREATE DATABASE ab_flash' >/dev/null 2>&1
  env $(python3 loadtest/default_periods.py) \
  FLOODGATE_ENV=test FLOODGATE__SERVER__PORT=18181 FLOODGATE__SERVER__WORKERS=2 FLOODGATE__DATABASE__URL="$PG/ab_flash" \
    FLOODGATE__REDIS__KEY_PREFIX="ab$RANDOM" RUST_LOG="info,floodgate::access=off" "$bin" > "$OUT/server-$name.log" 2>&1 &
  PID=$!
  target/release/fgdrive wait-ready --timeout 60 >/dev/null
  SALE=$(target/release/fgdrive flash "${ARGS[@]}" --create-only)
  psql "$PG/ab_flash" -qc 'ANALYZE units' >/dev/null
  sleep 3
  /usr/bin/time -f '%U %S' -o "$OUT/time-$name.txt" "$drv" flash "${ARGS[@]}" --sale "$SALE" > "$OUT/flash-$name.txt" 2>&1
  # CPU seconds (user + system) of the server and of the driver over the run.
  server_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$PID/stat")
  driver_cpu=$(tail -1 "$OUT/time-$name.txt" | awk '{printf "%.1f", $1 + $2}')
  echo "$name: $(grep 'joined after' "$OUT/flash-$name.txt") | $(grep -E '^(join|status) ' "$OUT/flash-$name.txt" \
    | awk '{printf "%s %s requests, p50 %s ms, p95 %s ms; ", $1, $2, $4, $5}')CPU s: server $server_cpu, driver $driver_cpu"
  kill $PID; wait $PID 2>/dev/null
done; done
psql "$FLOODGATE__DATABASE__URL" -qc 'DROP DATABASE IF EXISTS ab_flash WITH (FORCE)' >/dev/null 2>&1
