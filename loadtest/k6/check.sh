#!/usr/bin/env bash
# loadtest/k6/check.sh — offline syntax check of the k6 scripts (run by
# scripts/test.sh). With k6 installed: `k6 inspect` each scenario; without
# it: `node --check` each script as an ES module. Prints "N passed, M failed".
set -uo pipefail

DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
passed=0 failed=0

if command -v k6 >/dev/null 2>&1; then
    tool="k6 inspect"
    for f in "$DIR"/join.js "$DIR"/poll.js "$DIR"/hold.js "$DIR"/flash.js; do
        if out="$(k6 inspect "$f" 2>&1)"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            printf 'FAIL %s\n%s\n' "${f##*/}" "$out"
        fi
    done
elif command -v node >/dev/null 2>&1; then
    tool="node --check"
    tmp="$(mktemp -d)"
    trap 'rm -rf -- "$tmp"' EXIT
    for f in "$DIR"/*.js; do
        # .mjs: checked as an ES module (k6 scripts use import/export).
        cp -- "$f" "$tmp/$(basename -- "${f%.js}").mjs"
        if out="$(node --check "$tmp/$(basename -- "${f%.js}").mjs" 2>&1)"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            printf 'FAIL %s\n%s\n' "${f##*/}" "$out"
        fi
    done
    # Every scenario exports options and a default function, and imports lib.js.
    for f in "$DIR"/join.js "$DIR"/poll.js "$DIR"/hold.js "$DIR"/flash.js; do
        if ! grep -q '^export const options' "$f" || ! grep -q '^export default function' "$f" \
            || ! grep -q "from './lib.js'" "$f" || ! grep -q 'thresholds' "$f"; then
            failed=$((failed + 1))
            echo "FAIL ${f##*/}: needs options with thresholds, a default function and lib.js"
        fi
    done
else
    echo "k6 check: neither k6 nor node is installed; skipped"
    echo "0 passed, 0 failed"
    exit 0
fi

echo "k6 scripts checked with $tool"
echo "$passed passed, $failed failed"
((failed == 0))
