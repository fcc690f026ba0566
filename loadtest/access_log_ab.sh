#!/usr/bin/env bash
# loadtest/access_log_ab.sh — what the per-request access log costs: joins
# (wrk, 8 s, 64 connections) against the release server with the access log
# on (RUST_LOG=info) and off (info,floodgate::access=off), two alternating
# rounds, each on a fresh database and server on port 18181. Needs
# scripts/services.sh up and a release build. Results: RESULTS.md.
set -uo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
eval "$(scripts/services.sh env)"
BIN=/tmp/ab-floodgate; cp target/release/floodgate $BIN
PG="${FLOODGATE__DATABASE__URL%/*}"
for round in 1 2; do
for mode in on off; do
  if [ $mode = on ]; then LOG=info; else LOG="info,floodgate::access=off"; fi
  psql "$FLOODGATE__DATABASE__URL" -qc 'DROP DATABASE IF EXISTS ab_run WITH (FORCE)' -c 'CREATE DATABASE ab_run' >/dev/null 2>&1
  FLOODGATE_ENV=test FLOODGATE__SERVER__PORT=18181 FLOODGATE__SERVER__WORKERS=2 FLOODGATE__DATABASE__URL="$PG/ab_run" FLOODGATE__REDIS__KEY_PREFIX=ab$RANDOM RUST_LOG="$LOG" $BIN > /tmp/ab-server-$mode.log 2>&1 &
  PID=$!
  for i in $(seq 50); do curl -sf localhost:18181/readyz >/dev/null && break; sleep 0.2; done
  SALE=$(curl -s -XPOST localhost:18181/admin/v1/sales -H 'Authorization: Bearer test-admin-key' -H 'content-type: application/json' -d '{"name":"ab","units":{"count":1000},"waiting_room":true,"admission":{"admit_per_second":0,"abandon_after_seconds":3600}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  FG_WRK_THREADS=2 wrk -t2 -c64 -d8s --timeout 10s -s loadtest/wrk/join.lua http://127.0.0.1:18181/api/v1/sales/$SALE/queue > /tmp/ab-wrk.txt 2>&1
  echo "round $round access $mode: $(grep 'Requests/sec' /tmp/ab-wrk.txt) log lines $(wc -l < /tmp/ab-server-$mode.log)"
  kill $PID; wait $PID 2>/dev/null
done; done
psql "$FLOODGATE__DATABASE__URL" -qc 'DROP DATABASE IF EXISTS ab_run WITH (FORCE)' >/dev/null 2>&1
