# shellcheck shell=bash
# scripts/testserver.sh — sourced, not run: start a throw-away floodgate
# for a check script (loadtest/k6/check.sh, scripts/check-deploy.sh).
#
#   source scripts/testserver.sh
#   testserver_start NAME      # sets TS_BASE_URL, TS_PORT, TS_ADMIN_KEY,
#                              # TS_WEBHOOK_SECRET, TS_LOG; stops it on EXIT
#   testserver_http METHOD PATH EXPECTED_STATUS [JSON_BODY]   # admin-keyed
#
# A caller that starts more processes defines ts_extra_cleanup; it runs on
# exit before the server is stopped.
#
# The server is target/debug/floodgate (FLOODGATE_BIN overrides; built with
# `cargo build --bin floodgate` first unless TESTSERVER_NO_BUILD=1), run with
# FLOODGATE_ENV=test on a free loopback port against a fresh database on the
# services' Postgres and a Redis key prefix of its own; on exit it is stopped,
# the database dropped and the prefix's keys deleted. Postgres and Redis come
# from scripts/services.sh (started if they do not answer), or from
# FLOODGATE__DATABASE__URL / FLOODGATE__REDIS__URL.
#
# TS_WEBHOOK_URL=http://127.0.0.1:PORT/...  adds one webhook endpoint
# (every event type, secret TS_WEBHOOK_ENDPOINT_SECRET) to a copy of config/.

TS_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
TS_PID=""
TS_DB=""
TS_PREFIX=""
TS_ADMIN_DB_URL=""
TS_LOG=""
TS_NAME="testserver"
TS_CONFIG_DIR=""
TS_WEBHOOK_ENDPOINT_SECRET="check-webhook-endpoint-secret"

ts_say() { printf '[%s] %s\n' "$TS_NAME" "$*" >&2; }

ts_psql_bin() {
    local p
    p="$(command -v psql || true)"
    if [[ -z "$p" ]]; then
        for c in /usr/lib/postgresql/*/bin/psql; do [[ -x "$c" ]] && p="$c"; done
    fi
    [[ -n "$p" ]] && printf '%s\n' "$p"
}

ts_psql() {
    PGOPTIONS="-c client_min_messages=warning" PGCONNECT_TIMEOUT=5 \
        "$(ts_psql_bin)" "$TS_ADMIN_DB_URL" -X -q -v ON_ERROR_STOP=1 "$@"
}

testserver_stop() {
    if [[ -n "$TS_PID" ]] && kill -0 "$TS_PID" 2>/dev/null; then
        kill -TERM "$TS_PID" 2>/dev/null || true
        local _
        for _ in $(seq 1 50); do kill -0 "$TS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$TS_PID" 2>/dev/null || true
        wait "$TS_PID" 2>/dev/null || true
    fi
    TS_PID=""
    if [[ -n "$TS_PREFIX" ]] && command -v redis-cli >/dev/null 2>&1; then
        redis-cli -u "$FLOODGATE__REDIS__URL" --scan --pattern "$TS_PREFIX*" 2>/dev/null \
            | xargs -r redis-cli -u "$FLOODGATE__REDIS__URL" del >/dev/null 2>&1 || true
    fi
    TS_PREFIX=""
    if [[ -n "$TS_DB" ]]; then
        ts_psql -c "DROP DATABASE IF EXISTS \"$TS_DB\" WITH (FORCE)" >/dev/null 2>&1 \
            || ts_psql -c "DROP DATABASE IF EXISTS \"$TS_DB\"" >/dev/null 2>&1 || true
    fi
    TS_DB=""
    [[ -n "$TS_CONFIG_DIR" ]] && rm -rf -- "$TS_CONFIG_DIR"
    TS_CONFIG_DIR=""
}

ts_on_exit() {
    local rc=$?
    if [[ $rc -ne 0 && -n "$TS_LOG" && -s "$TS_LOG" ]]; then
        if [[ -n "$TS_PID" ]] && kill -0 "$TS_PID" 2>/dev/null; then
            ts_say "the server's log is $TS_LOG"
        else
            ts_say "the server is gone; last lines of its log ($TS_LOG):"
            tail -n 30 "$TS_LOG" >&2 || true
        fi
    fi
    # A passing run leaves no log behind.
    if [[ $rc -eq 0 && -z "${TS_LOG_FILE:-}" && -n "$TS_LOG" ]]; then rm -f -- "$TS_LOG"; fi
    # A caller's own clean-up, if it defines one.
    if declare -F ts_extra_cleanup >/dev/null; then ts_extra_cleanup || true; fi
    testserver_stop
    exit $rc
}

ts_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# testserver_http METHOD PATH EXPECTED_STATUS [BODY] — prints the body; fails
# unless the answer has the expected status. Uses the admin key.
testserver_http() {
    local method="$1" path="$2" expect="$3" body="${4:-}"
    local args=(-sS -o /dev/stdout -w '\n%{http_code}' -X "$method" -H "Authorization: Bearer $TS_ADMIN_KEY" --max-time 20)
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    local out code
    out="$(curl "${args[@]}" "$TS_BASE_URL$path")" || return 2
    code="${out##*$'\n'}"
    printf '%s' "${out%$'\n'*}"
    [[ "$code" == "$expect" ]] || { ts_say "$method $path: HTTP $code, expected $expect" ; return 1; }
}

# testserver_start NAME — see the top of this file.
testserver_start() {
    TS_NAME="${1:-testserver}"
    command -v curl >/dev/null 2>&1 || { ts_say "curl is needed"; return 1; }
    command -v python3 >/dev/null 2>&1 || { ts_say "python3 is needed"; return 1; }

    if [[ -z "${FLOODGATE__DATABASE__URL:-}" || -z "${FLOODGATE__REDIS__URL:-}" ]]; then
        if ! "$TS_ROOT/scripts/services.sh" status >/dev/null 2>&1; then
            ts_say "starting postgres and redis (scripts/services.sh up)"
            "$TS_ROOT/scripts/services.sh" up >&2
        fi
        local env
        env="$("$TS_ROOT/scripts/services.sh" env)"
        eval "$env"
    fi
    [[ -n "$(ts_psql_bin)" ]] || { ts_say "psql not found (scripts/services.sh up installs it)"; return 1; }

    local bin="${FLOODGATE_BIN:-$TS_ROOT/target/debug/floodgate}"
    if [[ -z "${FLOODGATE_BIN:-}" && "${TESTSERVER_NO_BUILD:-}" != 1 ]]; then
        ts_say "cargo build --bin floodgate"
        (cd -- "$TS_ROOT" && cargo build --quiet --bin floodgate) >&2 || return 1
    fi
    [[ -x "$bin" ]] || { ts_say "no server binary at $bin"; return 1; }

    # A fresh database beside the configured one.
    local url="$FLOODGATE__DATABASE__URL" query="" rest server
    if [[ "$url" == *\?* ]]; then query="?${url#*\?}"; url="${url%%\?*}"; fi
    rest="${url#*://}"
    if [[ "$rest" == */* ]]; then server="${url%/*}"; else server="$url"; fi
    local tag
    tag="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
    TS_DB="floodgate_${TS_NAME//[^a-z0-9]/_}_${tag}"
    TS_ADMIN_DB_URL="$server/postgres$query"
    TS_PREFIX="${TS_NAME//[^a-z0-9]/}$tag"
    trap ts_on_exit EXIT
    trap 'exit 130' INT TERM
    ts_psql -c "CREATE DATABASE \"$TS_DB\"" >/dev/null || return 1

    TS_PORT="$(ts_free_port)"
    TS_BASE_URL="http://127.0.0.1:$TS_PORT"
    TS_LOG="${TS_LOG_FILE:-$(mktemp -t "floodgate-$TS_NAME.XXXXXX.log")}"
    TS_ADMIN_KEY="$(awk '/^\[/{s=$0} s=="[admin]" && /^keys *=/{ if (match($0, /"[^"]+"/)) { print substr($0, RSTART+1, RLENGTH-2); exit } }' "$TS_ROOT/config/test.toml")"
    TS_WEBHOOK_SECRET="$(awk '/^\[/{s=$0} s=="[payments]" && /^webhook_secret *=/{ if (match($0, /"[^"]+"/)) { print substr($0, RSTART+1, RLENGTH-2); exit } }' "$TS_ROOT/config/test.toml")"
    [[ -n "$TS_ADMIN_KEY" && -n "$TS_WEBHOOK_SECRET" ]] || { ts_say "no admin key or webhook secret in config/test.toml"; return 1; }

    local config_dir="$TS_ROOT/config"
    if [[ -n "${TS_WEBHOOK_URL:-}" ]]; then
        TS_CONFIG_DIR="$(mktemp -d)"
        cp -- "$TS_ROOT"/config/*.toml "$TS_CONFIG_DIR/"
        sed -i '/^\[webhooks\]$/a\
endpoints = [{ name = "'"$TS_NAME"'", url = "'"$TS_WEBHOOK_URL"'", secret = "'"$TS_WEBHOOK_ENDPOINT_SECRET"'" }]' "$TS_CONFIG_DIR/test.toml"
        grep -q "^endpoints = " "$TS_CONFIG_DIR/test.toml" || { ts_say "could not add the webhook endpoint"; return 1; }
        config_dir="$TS_CONFIG_DIR"
    fi

    ts_say "starting $bin on $TS_BASE_URL (database $TS_DB, redis prefix $TS_PREFIX, log $TS_LOG)"
    (cd -- "$TS_ROOT" && exec env FLOODGATE_ENV=test \
        FLOODGATE_CONFIG_DIR="$config_dir" \
        FLOODGATE__SERVER__PORT="$TS_PORT" \
        FLOODGATE__DATABASE__URL="$server/$TS_DB$query" \
        FLOODGATE__REDIS__URL="$FLOODGATE__REDIS__URL" \
        FLOODGATE__REDIS__KEY_PREFIX="$TS_PREFIX" \
        "$bin") >"$TS_LOG" 2>&1 &
    TS_PID=$!

    local _
    for _ in $(seq 1 300); do
        kill -0 "$TS_PID" 2>/dev/null || { ts_say "the server exited during start-up"; return 1; }
        if curl -fsS --max-time 2 "$TS_BASE_URL/readyz" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    ts_say "the server was not ready within 30 s"
    return 1
}
