#!/usr/bin/env bash
# scripts/test.sh — the full check suite (the README "test" command; CI runs it
# through .ci/run).
#
# Usage: scripts/test.sh
#
# Stages, in order, stopping at the first failure (exit status non-zero):
#   1. cargo fmt --check
#   2. cargo clippy, warnings are errors
#   3. cargo test (unit + integration tests against real Postgres/Redis)
#   3b. the API tests again against a Redis Cluster (3 masters, 3 replicas,
#      started by scripts/services.sh up --redis-cluster)
#   4. node --test web/js/*.test.mjs — unit tests of the buyer pages' modules
#   5. tests/browser/run.sh      — only if present and executable
#   6. loadtest/k6/check.sh      — only if present and executable: every k6
#                                  scenario run briefly against a test server
#   7. scripts/check-deploy.sh   — only if present and executable: promtool
#                                  checks and unit tests of deploy/prometheus,
#                                  the Grafana dashboard's queries, and their
#                                  metric names against a live /metrics
#   8. scripts/schemathesis.sh   — the API against its OpenAPI document
#                                  (schemathesis, every check, no finding)
#
# Environment:
#   FLOODGATE_TEST_THREADS   libtest --test-threads (default 3). Each
#                            integration test gets its own ft_* database, so
#                            this bounds concurrent DB/Redis load.
#   FLOODGATE__DATABASE__URL / FLOODGATE__REDIS__URL  use existing servers
#                            (see scripts/services.sh).

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
cd -- "$ROOT"

TEST_THREADS="${FLOODGATE_TEST_THREADS:-3}"
if ! [[ "$TEST_THREADS" =~ ^[1-9][0-9]*$ ]]; then
    echo "test.sh: FLOODGATE_TEST_THREADS must be a positive integer, got '$TEST_THREADS'" >&2
    exit 2
fi

banner() { printf '\n==> [test.sh] %s\n' "$*"; }

# run_stage NAME CMD... — run one stage with a banner; on failure report the
# stage and exit with its status so CI shows where it broke.
run_stage() {
    local name="$1"; shift
    local start=$SECONDS rc=0
    banner "$name: $*"
    "$@" || rc=$?
    if ((rc != 0)); then
        printf '\n==> [test.sh] FAILED: %s (exit %d)\n' "$name" "$rc" >&2
        exit "$rc"
    fi
    banner "$name: ok ($((SECONDS - start))s)"
}

# Optional stage: run only if the script exists and is executable. Say so
# when it is skipped, so a missing chmod +x does not go unnoticed.
optional_stage() {
    local name="$1" script="$2"
    if [[ -x "$ROOT/$script" ]]; then
        run_stage "$name" "$ROOT/$script"
    elif [[ -e "$ROOT/$script" ]]; then
        banner "$name: skipped ($script exists but is not executable)"
    else
        banner "$name: skipped ($script not present)"
    fi
}

# ---------------------------------------------------------------------------
# Toolchain
# ---------------------------------------------------------------------------

# rustup installs into ~/.cargo/bin, which non-login shells (CI) often lack.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-${HOME:-}/.cargo}/bin/cargo" ]]; then
    PATH="${CARGO_HOME:-${HOME:-}/.cargo}/bin:$PATH"
    export PATH
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: 'cargo' not found. Install Rust with rustup (https://rustup.rs), then: rustup component add rustfmt clippy" >&2
    exit 1
fi
# Fail early with a hint rather than cargo's terse "no such command".
for component in fmt:rustfmt clippy:clippy; do
    if ! cargo "${component%%:*}" --version >/dev/null 2>&1; then
        echo "test.sh: 'cargo ${component%%:*}' is unavailable; install it with: rustup component add ${component##*:}" >&2
        exit 1
    fi
done

# ---------------------------------------------------------------------------
# Services and environment
# ---------------------------------------------------------------------------

banner "services: postgres + redis"
"$SCRIPT_DIR/services.sh" up

# Capture first, then eval: a failing command substitution inside eval would
# otherwise be ignored by set -e.
service_env="$("$SCRIPT_DIR/services.sh" env)"
eval "$service_env"
export FLOODGATE_ENV=test

# The integration-test harness creates one database per test, named ft_*,
# and drops it afterwards; a crashed or interrupted run leaves them behind.
# Clean them up so they do not accumulate. WITH (FORCE) (PG >= 13) also
# disconnects sessions a killed test binary may have left open. Best effort:
# errors here must not fail the suite.
# Note: this would disturb a concurrent test run against the same server.
drop_leftover_test_dbs() {
    local n
    n="$("$SCRIPT_DIR/services.sh" psql -XtAqc \
        "select count(*) from pg_database where datname like 'ft\_%'" 2>/dev/null)" || n="?"
    if [[ "$n" == "0" ]]; then
        return 0
    fi
    echo "test.sh: dropping ${n} leftover ft_* test database(s)"
    # \gexec runs each generated statement on its own, outside a
    # transaction block, as DROP DATABASE requires.
    "$SCRIPT_DIR/services.sh" psql -Xq -v ON_ERROR_STOP=0 <<'SQL' >/dev/null || true
SELECT format('DROP DATABASE IF EXISTS %I', datname)
       || CASE WHEN current_setting('server_version_num')::int >= 130000
               THEN ' WITH (FORCE)' ELSE '' END
FROM pg_database
WHERE datname LIKE 'ft\_%'
\gexec
SQL
}
drop_leftover_test_dbs

# ---------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------

run_stage "fmt" cargo fmt --all -- --check
run_stage "clippy" cargo clippy --all-targets -- -D warnings
# Output is deliberately not piped or filtered: CI reads the libtest
# "test result:" summary lines.
run_stage "test" cargo test --all-targets -- --test-threads="$TEST_THREADS"
# The same API tests with the waiting room on a Redis Cluster instead of one
# node (tests that need a Redis of their own, to stop it or watch it, still
# start one; the failover test starts a cluster of its own to kill a master).
# A subshell, so the later stages keep the single Redis.
# `set -e` does not apply inside a function run_stage calls, hence the
# explicit exits: a cluster that did not form must stop CI here.
cluster_tests() (
    "$SCRIPT_DIR/services.sh" up --redis-cluster || exit
    eval "$("$SCRIPT_DIR/services.sh" env --redis-cluster)" || exit
    cargo test --test api -- --test-threads="$TEST_THREADS"
)
run_stage "cluster" cluster_tests
# The pages' pure modules (formatting, proof of work) under node:test; the
# glob is expanded here, so any node from 20 on runs the same files.
command -v node >/dev/null 2>&1 || { echo "test.sh: 'node' (20 or later) is needed for the web stage" >&2; exit 1; }
run_stage "web" node --test web/js/*.test.mjs
optional_stage "browser" tests/browser/run.sh
# Both start target/debug/floodgate, which the test stage has just built
# (cargo build --bin floodgate first is then a no-op).
optional_stage "k6" loadtest/k6/check.sh
optional_stage "deploy" scripts/check-deploy.sh
optional_stage "openapi" scripts/schemathesis.sh

banner "all stages passed"
