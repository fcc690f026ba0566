#!/usr/bin/env bash
# tests/browser/run.sh — the web pages in a real browser (issues 7 and 15).
#
# Installs what it needs (Debian's chromium, playwright-core and axe-core
# from package-lock.json; never a downloaded browser), builds the server,
# starts it on a free port against a fresh database, and runs:
#   buyer.test.mjs   the buyer pages, on a sale with 2 units and proof of
#                    work at the demo difficulty, created here; then on
#                    priced sales it creates itself (EUR by stage, KWD by
#                    section): category, unit prices, totals; and a sale
#                    with sessions: a day in the month view, a time, the
#                    time on the hold and the order
#   admin.test.mjs   the admin console (/admin): a whole sale (priced) and
#                    a lottery driven from it, a priced reserved-seating
#                    sale created at phone size, a sale with sessions
#                    created from a recurrence, its sessions paged,
#                    paused, resumed and closed
#   verify.test.mjs  the draw verification page (/s/{sale}/verify) against
#                    a real lottery draw and a real pre-queue shuffle
# then stops the server again. The server's configuration is config/ plus
# one webhook endpoint that refuses every delivery of queue.admitted (two
# tries), so the admin console has dead letters to list and replay.
#
# Expects Postgres and Redis from scripts/services.sh (started here if they
# do not answer). Screenshots, the server log and pow.json (solve times and
# the hashing rate) go to tests/browser/out/.
#
# Environment:
#   FLOODGATE__DATABASE__URL / FLOODGATE__REDIS__URL   the services to use
#   BROWSER_TEST_KEEP_DB=1   keep the test database afterwards
#   BROWSER_TESTS="buyer admin verify"   which of the tests to run
#   BROWSER_TEST_ONLY=<regexp>   only the tests (of each file) whose names match

set -euo pipefail

HERE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$HERE/../.." && pwd -P)"
OUT="$HERE/out"
CHROMIUM=/usr/bin/chromium

say() { printf '[browser] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

cd -- "$ROOT"
mkdir -p "$OUT"
rm -f "$OUT"/*.png

# ---------------------------------------------------------------------------
# Tools: chromium from Debian, playwright-core from npm
# ---------------------------------------------------------------------------

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root to run: $*"
    fi
}

if [[ ! -x "$CHROMIUM" ]]; then
    command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and apt-get is unavailable; install chromium"
    say "installing chromium (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
[[ -x "$CHROMIUM" ]] || die "$CHROMIUM still missing after installing chromium"

command -v node >/dev/null 2>&1 || die "node (20 or later) is needed"
command -v npm >/dev/null 2>&1 || die "npm is needed"
# Each package of package-lock.json at its locked version, or npm ci.
stale="$(node -e '
    const dir = process.argv[1];
    const lock = require(dir + "/package-lock.json");
    for (const [where, p] of Object.entries(lock.packages)) {
        if (!where) continue;
        let have = "";
        try { have = require(dir + "/" + where + "/package.json").version; } catch {}
        if (have !== p.version) console.log(where.replace("node_modules/", "") + "@" + p.version);
    }' "$HERE")"
if [[ -n "$stale" ]]; then
    say "installing $(echo $stale) (npm ci)"
    # playwright-core and axe-core have no install scripts; no browser is downloaded.
    (cd -- "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

# ---------------------------------------------------------------------------
# Services, build
# ---------------------------------------------------------------------------

if ! scripts/services.sh status >/dev/null 2>&1; then
    say "starting postgres and redis (scripts/services.sh up)"
    scripts/services.sh up
fi
service_env="$(scripts/services.sh env)"
eval "$service_env"
: "${FLOODGATE__DATABASE__URL:?not set by scripts/services.sh env}"
: "${FLOODGATE__REDIS__URL:?not set by scripts/services.sh env}"

say "building (cargo build --bin floodgate)"
cargo build --bin floodgate

# ---------------------------------------------------------------------------
# A fresh database on the same Postgres server
# ---------------------------------------------------------------------------

PSQL="$(command -v psql || true)"
if [[ -z "$PSQL" ]]; then
    for candidate in /usr/lib/postgresql/*/bin/psql; do
        [[ -x "$candidate" ]] && PSQL="$candidate"
    done
fi
[[ -n "$PSQL" && -x "$PSQL" ]] || die "psql not found (scripts/services.sh up installs it)"

url="$FLOODGATE__DATABASE__URL"
query=""
if [[ "$url" == *\?* ]]; then query="?${url#*\?}"; url="${url%%\?*}"; fi
rest="${url#*://}"
if [[ "$rest" == */* ]]; then server="${url%/*}"; else server="$url"; fi
DB_NAME="floodgate_browser_$$"
ADMIN_DB_URL="$server/postgres$query"
TEST_DB_URL="$server/$DB_NAME$query"

psql_admin() { PGOPTIONS="-c client_min_messages=warning" PGCONNECT_TIMEOUT=5 "$PSQL" "$ADMIN_DB_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

SERVER_PID=""
CONFIG_DIR=""
PREFIX="browser$(node -p "require('crypto').randomBytes(6).toString('hex')")"
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    # The sale's waiting-room keys, under this run's own prefix.
    if command -v redis-cli >/dev/null 2>&1; then
        redis-cli -u "$FLOODGATE__REDIS__URL" --scan --pattern "$PREFIX*" 2>/dev/null \
            | xargs -r redis-cli -u "$FLOODGATE__REDIS__URL" del >/dev/null 2>&1 || true
    fi
    if [[ "${BROWSER_TEST_KEEP_DB:-}" != 1 ]]; then
        psql_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 \
            || psql_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\"" >/dev/null 2>&1 || true
    fi
    [[ -n "$CONFIG_DIR" ]] && rm -rf -- "$CONFIG_DIR"
    if [[ $rc -ne 0 && -s "$OUT/server.log" ]]; then
        say "last lines of the server log ($OUT/server.log):"
        tail -n 40 "$OUT/server.log" >&2 || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\"" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null

# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------

# config/ as it is, plus a webhook endpoint nothing listens on (port 9 of
# this host refuses), for queue.admitted only, dead-lettered after 2 tries.
CONFIG_DIR="$(mktemp -d)"
cp config/default.toml "$CONFIG_DIR/"
sed '/^\[webhooks\]$/a\
max_attempts = 2\
endpoints = [{ name = "browser-test-refused", url = "http://127.0.0.1:9/hook", secret = "browser-test-webhook-secret", events = ["queue.admitted"] }]' \
    config/test.toml >"$CONFIG_DIR/test.toml"
grep -q browser-test-refused "$CONFIG_DIR/test.toml" || die "could not add the webhook endpoint to the test configuration"

PORT="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
BASE_URL="http://127.0.0.1:$PORT"

say "starting the server on $BASE_URL (database $DB_NAME, redis prefix $PREFIX)"
FLOODGATE_ENV=test \
FLOODGATE_CONFIG_DIR="$CONFIG_DIR" \
FLOODGATE__SERVER__PORT="$PORT" \
FLOODGATE__DATABASE__URL="$TEST_DB_URL" \
FLOODGATE__REDIS__KEY_PREFIX="$PREFIX" \
    "$ROOT/target/debug/floodgate" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!

# The admin key: the first of [admin] keys in config/test.toml.
ADMIN_KEY="$(awk '/^\[/{section=$0} section=="[admin]" && /^keys *=/{ if (match($0, /"[^"]+"/)) { print substr($0, RSTART+1, RLENGTH-2); exit } }' config/test.toml)"
[[ -n "$ADMIN_KEY" ]] || die "no [admin] keys in config/test.toml"

# Small HTTP helper (node's fetch: no curl needed). Prints the body; exits
# non-zero unless the status is the expected one.
http() {
    local method="$1" path="$2" expect="$3" body="${4:-}"
    ADMIN_KEY="$ADMIN_KEY" METHOD="$method" URL="$BASE_URL$path" EXPECT="$expect" BODY="$body" node -e '
        const headers = { Authorization: "Bearer " + process.env.ADMIN_KEY };
        if (process.env.BODY) headers["Content-Type"] = "application/json";
        fetch(process.env.URL, { method: process.env.METHOD, headers, body: process.env.BODY || undefined })
          .then(async (r) => {
            const text = await r.text();
            process.stdout.write(text);
            process.exit(String(r.status) === process.env.EXPECT ? 0 : 1);
          }, () => process.exit(2));'
}

ready=0
for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start-up"
    if http GET /readyz 200 >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
[[ $ready == 1 ]] || die "the server was not ready within 30 s"

# Proof of work on (SPEC §4a) at the demo sale's difficulty, so the recorded
# solve times are the demo's. Every test visitor comes from 127.0.0.1, which
# would make each challenge harder than the last: the ceiling is the base.
CHALLENGE_BITS="$(sed -n 's/^pub const DEMO_DIFFICULTY: i64 = \([0-9]*\);/\1/p' src/demo.rs)"
[[ -n "$CHALLENGE_BITS" ]] || die "DEMO_DIFFICULTY not found in src/demo.rs"
sale_json="$(http POST /admin/v1/sales 201 '{
  "name": "Browser test sale",
  "units": { "count": 2 },
  "per_user_limit": 2,
  "hold_ttl_seconds": 300,
  "waiting_room": true,
  "shuffle_prequeue": false,
  "challenge": { "difficulty_bits": '"$CHALLENGE_BITS"', "max_difficulty_bits": '"$CHALLENGE_BITS"' },
  "admission": { "admit_per_second": 1, "max_active": 3,
                 "admission_ttl_seconds": 120, "abandon_after_seconds": 60 }
}')" || die "could not create the sale: $sale_json"
SALE_ID="$(SALE="$sale_json" node -p 'JSON.parse(process.env.SALE).id')"
say "sale $SALE_ID created (proof of work: $CHALLENGE_BITS bits)"

# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------

cd -- "$HERE"
failed=()
for name in ${BROWSER_TESTS:-buyer admin verify}; do
    [[ -f "$name.test.mjs" ]] || die "no test $name.test.mjs"
    say "running $name.test.mjs"
    started=$SECONDS
    if BASE_URL="$BASE_URL" SALE_ID="$SALE_ID" OUT_DIR="$OUT" CHROMIUM="$CHROMIUM" CHALLENGE_BITS="$CHALLENGE_BITS" \
        ADMIN_KEY="$ADMIN_KEY" node "$name.test.mjs"; then
        say "$name.test.mjs passed ($((SECONDS - started)) s)"
    else
        say "$name.test.mjs FAILED ($((SECONDS - started)) s)"
        failed+=("$name")
    fi
done
[[ ${#failed[@]} -eq 0 ]] || die "failed: ${failed[*]}"
say "all passed"
