#!/usr/bin/env bash
# scripts/schemathesis.sh — the API against its own OpenAPI document
# (issue 15): schemathesis with every check, failing on any finding.
#
# Starts the debug server (built by scripts/test.sh's cargo stage; built here
# when missing) against a fresh database of the project's Postgres
# (scripts/services.sh) and a Redis key prefix of its own, creates one sale
# so the sale routes have an id to work on, and runs
#
#   schemathesis --config-file schemathesis.toml run <server>/api/openapi.json \
#       --checks all --continue-on-failure
#
# schemathesis comes from PyPI into .data/venv-schemathesis (pinned below).
# schemathesis.toml names the few operations whose cross-field rules no schema
# can state. The buyer routes need tokens schemathesis cannot mint; their
# bodies and answers are covered by tests/api.
#
# Environment: ST_MAX_EXAMPLES (30), ST_SEED (fixed, so a run is repeatable;
# "random" for a fresh one), FLOODGATE__DATABASE__URL / FLOODGATE__REDIS__URL.

set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$ROOT"
SCHEMATHESIS_VERSION=4.32.5
VENV="$ROOT/.data/venv-schemathesis"
OUT="$ROOT/target/schemathesis"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}"
SEED="${ST_SEED:-20261201}"

say() { printf '[schemathesis] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [[ ! -x "$VENV/bin/schemathesis" ]] || [[ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != *"$SCHEMATHESIS_VERSION"* ]]; then
    command -v python3 >/dev/null 2>&1 || die "python3 (3.9 or later) is needed"
    say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    mkdir -p "$ROOT/.data"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [[ -z "${FLOODGATE__DATABASE__URL:-}" ]]; then
    scripts/services.sh up >&2
    eval "$(scripts/services.sh env)"
fi
[[ -x target/debug/floodgate ]] || cargo build --bin floodgate

mkdir -p "$OUT"
DB_NAME="ft_schemathesis_$$"
PREFIX="st$$"
BASE_DB_URL="$FLOODGATE__DATABASE__URL"
PGOPTIONS="--client-min-messages=warning" psql "$BASE_DB_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\"" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE_URL="http://127.0.0.1:$PORT"
ADMIN_KEY="$(awk '/^\[/{section=$0} section=="[admin]" && /^keys *=/{ if (match($0, /"[^"]+"/)) { print substr($0, RSTART+1, RLENGTH-2); exit } }' config/test.toml)"
[[ -n "$ADMIN_KEY" ]] || die "no [admin] keys in config/test.toml"

FLOODGATE_ENV=test FLOODGATE__SERVER__PORT="$PORT" FLOODGATE__DATABASE__URL="${BASE_DB_URL%/*}/$DB_NAME" \
    FLOODGATE__REDIS__KEY_PREFIX="$PREFIX" RUST_LOG="${RUST_LOG:-warn}" \
    target/debug/floodgate >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
cleanup() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    psql "$BASE_DB_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\"" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start-up (see $OUT/server.log)"
    curl -sf "$BASE_URL/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "$BASE_URL/readyz" >/dev/null || die "the server was not ready within 30 s"
curl -sf -X POST "$BASE_URL/admin/v1/sales" -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"name": "schemathesis", "units": {"count": 100}, "waiting_room": true}' >/dev/null \
    || die "could not create the sale"

seed=(--seed "$SEED")
[[ "$SEED" == random ]] && seed=()
say "running against $BASE_URL ($MAX_EXAMPLES examples per operation, seed ${SEED})"
# Its example database and reports stay out of the work tree.
cd -- "$OUT"
"$VENV/bin/schemathesis" --config-file "$ROOT/schemathesis.toml" run "$BASE_URL/api/openapi.json" \
    --checks all --continue-on-failure --workers 2 --max-examples "$MAX_EXAMPLES" "${seed[@]}" \
    --request-timeout 60 -H "Authorization: Bearer $ADMIN_KEY" >"$OUT/report.txt" 2>&1 && rc=0 || rc=$?
sed -n '/SUMMARY/,$p' "$OUT/report.txt" >&2
if ((rc != 0)); then
    say "failures (whole report: $OUT/report.txt):"
    grep -E '^_+ |^- ST|Received:|Documented:|^    curl' "$OUT/report.txt" | cut -c1-300 >&2 || true
fi
exit "$rc"
