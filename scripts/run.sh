#!/usr/bin/env bash
# scripts/run.sh — run the floodgate server locally (the README "run" command).
#
# Usage: scripts/run.sh [ARGS...]     (ARGS are passed to the floodgate binary)
#
# Starts (or reuses) the project's PostgreSQL and Redis via services.sh,
# exports their URLs, and execs the release build of the server from the repo
# root. The server applies its migrations itself and listens on
# 127.0.0.1:8080. FLOODGATE_ENV defaults to "dev"; set it to pick another
# config profile. Set FLOODGATE__DATABASE__URL / FLOODGATE__REDIS__URL to use
# existing servers instead.

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"

# rustup installs into ~/.cargo/bin, which non-login shells (CI, sudo) often
# lack in PATH; try it before giving up.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-${HOME:-}/.cargo}/bin/cargo" ]]; then
    PATH="${CARGO_HOME:-${HOME:-}/.cargo}/bin:$PATH"
    export PATH
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "run.sh: 'cargo' not found. Install Rust (>= the rust-version in Cargo.toml) with rustup:" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh   # then: source ~/.cargo/env" >&2
    exit 1
fi

"$SCRIPT_DIR/services.sh" up

# Capture first, then eval: a failure of `services.sh env` inside an eval'd
# command substitution would otherwise be silently ignored.
service_env="$("$SCRIPT_DIR/services.sh" env)"
eval "$service_env"

export FLOODGATE_ENV="${FLOODGATE_ENV:-dev}"

cd -- "$ROOT"
echo "run.sh: FLOODGATE_ENV=$FLOODGATE_ENV; starting floodgate (http://127.0.0.1:8080)" >&2
# exec: the server becomes this process, so Ctrl-C / SIGTERM reach it
# directly and it can shut down gracefully.
exec cargo run --release --bin floodgate -- "$@"
