#!/usr/bin/env bash
# scripts/services.sh — project-owned PostgreSQL + Redis for floodgate.
#
# Usage: scripts/services.sh [up [--redis-cluster]|down|status|env|psql [ARGS...]]
#        (default: up)
#
#   up      start (or reuse) Postgres on 127.0.0.1:$FLOODGATE_PG_PORT (54329)
#           and Redis on 127.0.0.1:$FLOODGATE_REDIS_PORT (63799), data under
#           <repo>/.data/, and make sure the `floodgate` database exists.
#           Installs what is missing with apt-get: postgresql, redis-server,
#           and nginx, which tests/api/balancer.rs runs (an nginx of its own
#           on a free port; this script never starts nginx).
#           With --redis-cluster (or FLOODGATE_REDIS_CLUSTER=1) also a Redis
#           Cluster of 3 masters and 3 replicas on 127.0.0.1 ports
#           $FLOODGATE_REDIS_CLUSTER_PORT (27379) to +5 (cluster bus: +1000), under
#           .data/redis-cluster/ (created once, reused after).
#   down    stop the servers this script started from <repo>/.data/ (the
#           cluster's nodes too).
#   status  say whether each service answers (exit 0 only if both do).
#   env     print `export ...` lines for FLOODGATE__DATABASE__URL and
#           FLOODGATE__REDIS__URL; use as: eval "$(scripts/services.sh env)".
#           With --redis-cluster also FLOODGATE__REDIS__CLUSTER_NODES (the
#           cluster's nodes), so floodgate uses the cluster instead.
#   psql    open psql against the database URL (extra args passed through).
#
# Overrides:
#   FLOODGATE__DATABASE__URL  use this Postgres instead of starting one.
#   FLOODGATE__REDIS__URL     use this Redis instead of starting one.
#   FLOODGATE_PG_PORT / FLOODGATE_REDIS_PORT   ports for the local servers.
#   FLOODGATE_SERVICES_TIMEOUT                 seconds to wait (default 30).
#
# Why project-owned servers instead of the system ones: tests and the dev
# server need a known superuser role, trust auth and generous connection
# limits, and must not depend on (or disturb) whatever the machine's Debian
# clusters/services are configured to do. Everything lives in .data/ (git-
# ignored) so `rm -rf .data` is a full reset.
#
# All diagnostics go to stderr so that `env` output on stdout stays eval-able.

set -euo pipefail

# ---------------------------------------------------------------------------
# Locations and settings
# ---------------------------------------------------------------------------

# Repo root = parent of this script's directory; never hardcoded, so the repo
# (or a git worktree of it) can live anywhere.
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
DATA="$ROOT/.data"

PG_PORT="${FLOODGATE_PG_PORT:-54329}"
REDIS_PORT="${FLOODGATE_REDIS_PORT:-63799}"
TIMEOUT="${FLOODGATE_SERVICES_TIMEOUT:-30}"
HOST=127.0.0.1

PGDATA_DIR="$DATA/pg"
PG_SOCKET_DIR="$DATA/pg-socket"
PG_LOG="$DATA/pg.log"
REDIS_DIR="$DATA/redis"
REDIS_PID="$DATA/redis.pid"
REDIS_LOG="$DATA/redis.log"
# Port our redis-server was started on (redis has no data-dir lock to read
# it back from, unlike postmaster.pid).
REDIS_PORT_FILE="$DATA/redis.port"
# The Redis Cluster: six nodes on consecutive ports, one directory each.
# Below the kernel's ephemeral range (32768-60999 on Debian), bus ports too:
# a node whose port an outgoing connection holds cannot listen ("Failed
# listening on port ... (cluster), aborting"), which once broke CI after the
# API tests had opened thousands of connections.
CLUSTER_PORT="${FLOODGATE_REDIS_CLUSTER_PORT:-27379}"
CLUSTER_BUS_OFFSET=1000
CLUSTER_DIR="$DATA/redis-cluster"
CLUSTER="${FLOODGATE_REDIS_CLUSTER:-0}"

PG_ROLE=floodgate
PG_DB=floodgate

# Overrides: when set, the corresponding server is someone else's to manage.
PG_URL_OVERRIDE="${FLOODGATE__DATABASE__URL:-}"
REDIS_URL_OVERRIDE="${FLOODGATE__REDIS__URL:-}"
DATABASE_URL="${PG_URL_OVERRIDE:-postgres://$PG_ROLE@$HOST:$PG_PORT/$PG_DB}"
REDIS_URL="${REDIS_URL_OVERRIDE:-redis://$HOST:$REDIS_PORT}"

# Filled in by find_pg_bindir.
PGBIN=""

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# Hide the password of a URL (scheme://user:secret@host) in human output;
# override URLs may carry credentials. `env` prints the real thing.
redact() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Print the last lines of a log file to stderr, to make failures actionable.
show_log_tail() {
    local file="$1"
    if [[ -r "$file" ]]; then
        printf '[services] --- last 30 lines of %s ---\n' "$file" >&2
        tail -n 30 -- "$file" >&2 || true
        printf '[services] --- end of %s ---\n' "$file" >&2
    fi
}

validate_port() {
    local name="$1" value="$2"
    # 10# forces base 10 so a leading zero is not parsed as octal.
    if ! [[ "$value" =~ ^[0-9]{1,5}$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
        die "$name must be a TCP port number, got '$value'"
    fi
}

# Postgres refuses to run as root, so when we are root every server-side
# Postgres command runs as the `postgres` system user created by the Debian
# package. As a normal user we simply run as ourselves.
PG_OS_USER=""
init_pg_os_user() {
    if is_root; then
        id -u postgres >/dev/null 2>&1 \
            || die "running as root but there is no 'postgres' system user (install the Debian 'postgresql' package, or run as a normal user)"
        PG_OS_USER=postgres
    else
        PG_OS_USER="$(id -un)"
    fi
}

# Run a command as the Postgres OS user. The subshell cd's to the data dir
# so the child never inherits a cwd it cannot read (initdb/pg_ctl complain).
# fd 9 (the services lock, see cmd_up) is closed for the child: otherwise the
# daemonised postmaster would inherit it and hold the lock for its lifetime.
as_pg() {
    if is_root; then
        (cd -- "$DATA" && runuser -u "$PG_OS_USER" -- "$@" 9>&-)
    else
        (cd -- "$DATA" && "$@" 9>&-)
    fi
}

# Install Debian packages (only used when binaries are missing).
apt_install() {
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 \
            || die "need to install: $* — but not root and sudo is unavailable; install them manually"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "need to install: $* — but apt-get is unavailable; install them manually"
    log "installing Debian packages: $*"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# ---------------------------------------------------------------------------
# Binary discovery
# ---------------------------------------------------------------------------

# Print the version number reported by "$dir/pg_ctl --version".
# The output looks like "pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
pg_bindir_version() {
    "$1/pg_ctl" --version 2>/dev/null | sed -n 's/^[^)]*) \([0-9][0-9.]*\).*/\1/p' | head -n1
}

# Find a directory with initdb, pg_ctl and postgres. Debian keeps them out of
# PATH in /usr/lib/postgresql/<major>/bin, so look there as well as in PATH,
# and pick the highest version. If a cluster already exists in .data/pg,
# prefer binaries of that cluster's major version: a newer postgres cannot
# open an older data directory.
find_pg_bindir() {
    local candidates=() dir initdb_path
    if initdb_path="$(command -v initdb 2>/dev/null)"; then
        candidates+=("$(dirname -- "$initdb_path")")
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -d "$dir" ]] && candidates+=("$dir")
    done

    local best="" best_ver="" want_major="" ver
    if [[ -r "$PGDATA_DIR/PG_VERSION" ]]; then
        want_major="$(<"$PGDATA_DIR/PG_VERSION")"
    fi
    for dir in ${candidates[@]+"${candidates[@]}"}; do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]] || continue
        ver="$(pg_bindir_version "$dir")"
        [[ -n "$ver" ]] || continue
        if [[ -n "$want_major" && "${ver%%.*}" != "$want_major" ]]; then
            continue
        fi
        # sort -V: highest version wins.
        if [[ -z "$best_ver" || "$(printf '%s\n%s\n' "$best_ver" "$ver" | sort -V | tail -n1)" == "$ver" ]]; then
            best="$dir"
            best_ver="$ver"
        fi
    done

    if [[ -z "$best" && -n "$want_major" && ${#candidates[@]} -gt 0 ]]; then
        die "$PGDATA_DIR was created by PostgreSQL $want_major but no PostgreSQL $want_major binaries were found; install postgresql-$want_major or remove $PGDATA_DIR"
    fi
    PGBIN="$best"
    [[ -n "$PGBIN" ]]
}

# A psql binary for client-only work (override mode, `psql` subcommand).
find_psql() {
    if [[ -n "$PGBIN" && -x "$PGBIN/psql" ]]; then
        printf '%s\n' "$PGBIN/psql"
    elif command -v psql >/dev/null 2>&1; then
        command -v psql
    else
        local dir
        for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
            [[ -x "$dir/psql" ]] && { printf '%s\n' "$dir/psql"; return 0; }
        done
        return 1
    fi
}

# Make sure every binary the requested work needs is present, installing the
# Debian packages once if anything is missing.
ensure_binaries() {
    local need_pg_server=1 need_redis=1 pkgs=()
    [[ -n "$PG_URL_OVERRIDE" ]] && need_pg_server=0
    [[ -n "$REDIS_URL_OVERRIDE" ]] && need_redis=0

    if ((need_pg_server)); then
        find_pg_bindir || pkgs+=(postgresql)
    else
        find_pg_bindir || true
        find_psql >/dev/null || pkgs+=(postgresql-client)
    fi
    # redis-cli is always needed (pinging an override URL, too).
    if ((need_redis)) && ! command -v redis-server >/dev/null 2>&1; then
        pkgs+=(redis-server)
    elif ! command -v redis-cli >/dev/null 2>&1; then
        pkgs+=(redis-tools)
    fi
    # nginx for the API tests' load balancer (tests/api/balancer.rs runs its
    # own from a temp dir); Debian keeps it in /usr/sbin, outside a non-root
    # PATH.
    if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
        pkgs+=(nginx)
    fi

    if ((${#pkgs[@]})); then
        apt_install "${pkgs[@]}"
        # Note: the Debian packages may start their own system-wide cluster /
        # service on the default ports (5432 / 6379, nginx on 80). That is
        # harmless: we use different ports and never touch them
        # (`systemctl disable --now nginx` if you do not want that one).
        if ((need_pg_server)); then
            find_pg_bindir || die "PostgreSQL server binaries still not found after installing 'postgresql'"
        fi
        find_psql >/dev/null || die "psql still not found after installing packages"
        command -v redis-cli >/dev/null 2>&1 || die "redis-cli still not found after installing packages"
        if ((need_redis)); then
            command -v redis-server >/dev/null 2>&1 || die "redis-server still not found after installing 'redis-server'"
        fi
        command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || die "nginx still not found after installing 'nginx'"
    fi
}

# ---------------------------------------------------------------------------
# Liveness probes
# ---------------------------------------------------------------------------

pg_answers() {
    if [[ -n "$PG_URL_OVERRIDE" ]]; then
        local psql_bin
        psql_bin="$(find_psql)" || return 1
        PGCONNECT_TIMEOUT=3 "$psql_bin" "$PG_URL_OVERRIDE" -XtAqc 'select 1' >/dev/null 2>&1
    else
        # pg_isready exits 0 only when the server accepts connections (1
        # while starting up, 2 when nothing answers).
        local isready=pg_isready
        [[ -n "$PGBIN" && -x "$PGBIN/pg_isready" ]] && isready="$PGBIN/pg_isready"
        # -U/-d name a role that exists, so the probe does not spam pg.log
        # with 'role "root" does not exist'.
        "$isready" -q -h "$HOST" -p "$PG_PORT" -U "$PG_ROLE" -d postgres -t 2 >/dev/null 2>&1
    fi
}

redis_answers() {
    local reply
    if [[ -n "$REDIS_URL_OVERRIDE" ]]; then
        reply="$(timeout 5 redis-cli -u "$REDIS_URL_OVERRIDE" ping 2>/dev/null)" || return 1
    else
        reply="$(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" || return 1
    fi
    # redis-cli exits 0 even for error replies (e.g. NOAUTH, LOADING), so
    # only a literal PONG counts as "answers".
    [[ "$reply" == "PONG" ]]
}

# wait_until SECONDS CMD... — poll CMD every 0.5 s until it succeeds.
wait_until() {
    local secs="$1"; shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# Is PID alive and running the program NAME? Guards against stale pid files
# whose PID has been reused by an unrelated process (common in containers).
pid_is() {
    local pid="$1" name="$2" comm
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || [[ -d "/proc/$pid" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == "$name"* ]]
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# Create .data/ and the Postgres-owned sub-directories. .data itself stays
# owned by the invoking user; only pg/, pg-socket/ and pg.log are handed to
# the postgres OS user, who must be able to write them.
prepare_pg_dirs() {
    mkdir -p -- "$DATA" "$PGDATA_DIR" "$PG_SOCKET_DIR"
    touch -- "$PG_LOG"
    if is_root; then
        chown "$PG_OS_USER": -- "$PGDATA_DIR" "$PG_SOCKET_DIR" "$PG_LOG"
        # The postgres user must be able to reach .data through every parent
        # directory (fails e.g. for a repo under /root with mode 700).
        runuser -u "$PG_OS_USER" -- test -w "$PGDATA_DIR" \
            || die "user '$PG_OS_USER' cannot reach $PGDATA_DIR (check permissions of its parent directories)"
    fi
    # initdb insists on 0700 (or 0750) for the data directory.
    chmod 700 -- "$PGDATA_DIR"
    chmod 755 -- "$PG_SOCKET_DIR"
}

pg_initdb_if_needed() {
    # PG_VERSION is written early by initdb, pg_control only by a completed
    # bootstrap; require both (and the config we append to).
    if [[ -s "$PGDATA_DIR/PG_VERSION" && -s "$PGDATA_DIR/global/pg_control" \
        && -f "$PGDATA_DIR/postgresql.conf" ]]; then
        return 0
    fi
    # A half-initialised directory (e.g. initdb killed midway) would make
    # initdb refuse to run; it holds no data yet, so clear it.
    if [[ -n "$(ls -A -- "$PGDATA_DIR")" ]]; then
        log "removing incomplete cluster in $PGDATA_DIR"
        find "$PGDATA_DIR" -mindepth 1 -delete
    fi
    log "initialising PostgreSQL cluster in $PGDATA_DIR ($("$PGBIN/pg_ctl" --version))"
    # trust auth is acceptable: the server listens on 127.0.0.1 and a socket
    # inside the repo only, and it is a throwaway dev/test instance.
    if ! as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" --auth=trust --username="$PG_ROLE" \
        --encoding=UTF8 --locale=C >"$DATA/initdb.log" 2>&1; then
        show_log_tail "$DATA/initdb.log"
        die "initdb failed"
    fi
}

# Settings live in floodgate.conf, included once from postgresql.conf and
# rewritten on every start, so a changed port or a moved repo (socket path)
# is picked up without editing postgresql.conf again.
pg_write_config() {
    local conf="$PGDATA_DIR/postgresql.conf" extra="$PGDATA_DIR/floodgate.conf"
    if ! grep -q "^include_if_exists = 'floodgate.conf'" -- "$conf"; then
        printf "\n# Added by scripts/services.sh — project settings\ninclude_if_exists = 'floodgate.conf'\n" >>"$conf"
    fi

    # Unix socket paths are limited to ~107 bytes; with a very deep repo path
    # fall back to TCP only (clients use TCP anyway).
    local sock_dirs="$PG_SOCKET_DIR"
    if ((${#PG_SOCKET_DIR} + 20 > 107)); then
        log "warning: $PG_SOCKET_DIR is too long for a unix socket; using TCP only"
        sock_dirs=""
    fi

    # Single quotes inside a path must be doubled in postgresql.conf.
    local q="'"
    {
        echo "# Generated by scripts/services.sh on each start; do not edit."
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PG_PORT"
        echo "unix_socket_directories = '${sock_dirs//$q/$q$q}'"
        # The waiting room admits bursts; tests run several servers with
        # their own pools in parallel.
        echo "max_connections = 300"
        echo "shared_buffers = 256MB"
        # fsync / synchronous_commit deliberately left at their durable
        # defaults: Postgres is the source of truth for ticket sales, and
        # tests should exercise the same commit semantics as production.
    } >"$extra"
    is_root && chown "$PG_OS_USER": -- "$extra"
    chmod 600 -- "$extra"
}

# If postmaster.pid exists but no live postgres owns it, remove it (and any
# stale socket lock files) so the new postmaster does not refuse to start.
# Returns 1 if a live postmaster for this data dir exists.
pg_clear_stale_pid() {
    local pidfile="$PGDATA_DIR/postmaster.pid" pid port
    [[ -f "$pidfile" ]] || return 0
    pid="$(sed -n 1p -- "$pidfile" 2>/dev/null || true)"
    if pid_is "$pid" postgres; then
        port="$(sed -n 4p -- "$pidfile" 2>/dev/null || true)"
        if [[ -n "$port" && "$port" != "$PG_PORT" ]]; then
            die "a postgres from $PGDATA_DIR is already running on port $port, not $PG_PORT; run '$0 down' first (with FLOODGATE_PG_PORT=$port if needed)"
        fi
        return 1
    fi
    log "removing stale $pidfile (pid ${pid:-?} is not a running postgres)"
    rm -f -- "$pidfile" "$PG_SOCKET_DIR"/.s.PGSQL.*.lock
    return 0
}

pg_up() {
    if [[ -n "$PG_URL_OVERRIDE" ]]; then
        wait_until "$TIMEOUT" pg_answers \
            || die "FLOODGATE__DATABASE__URL is set but that PostgreSQL does not answer within ${TIMEOUT}s"
        log "postgres: using external FLOODGATE__DATABASE__URL (answers)"
        return 0
    fi

    if pg_answers; then
        log "postgres: reusing server already answering on $HOST:$PG_PORT"
    else
        prepare_pg_dirs
        pg_initdb_if_needed
        pg_write_config
        if pg_clear_stale_pid; then
            log "postgres: starting on $HOST:$PG_PORT (log: $PG_LOG)"
            # -w waits for startup; a failure here is reported via the log.
            # The port is also passed on the command line so it always wins.
            if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$TIMEOUT" \
                -o "-p $PG_PORT" start >&2; then
                show_log_tail "$PG_LOG"
                die "postgres failed to start on $HOST:$PG_PORT"
            fi
        else
            log "postgres: a postmaster for $PGDATA_DIR is running; waiting for it to accept connections"
        fi
        if ! wait_until "$TIMEOUT" pg_answers; then
            show_log_tail "$PG_LOG"
            die "postgres did not answer on $HOST:$PG_PORT within ${TIMEOUT}s"
        fi
    fi

    pg_ensure_database
}

# Create the application database if missing. Runs as the invoking user over
# TCP; the `floodgate` role is the cluster superuser (initdb --username).
pg_ensure_database() {
    local exists
    exists="$("$PGBIN/psql" -X -h "$HOST" -p "$PG_PORT" -U "$PG_ROLE" -d postgres -tAc \
        "select 1 from pg_database where datname='$PG_DB'")" \
        || die "cannot connect to postgres on $HOST:$PG_PORT as role '$PG_ROLE' (is another server using this port?)"
    if [[ "$exists" != "1" ]]; then
        log "postgres: creating database '$PG_DB'"
        "$PGBIN/createdb" -h "$HOST" -p "$PG_PORT" -U "$PG_ROLE" "$PG_DB"
    fi
}

pg_down() {
    if [[ -n "$PG_URL_OVERRIDE" ]]; then
        log "postgres: FLOODGATE__DATABASE__URL is set; not stopping an external server"
        return 0
    fi
    local pidfile="$PGDATA_DIR/postmaster.pid" pid
    pid="$(sed -n 1p -- "$pidfile" 2>/dev/null || true)"
    if [[ -f "$pidfile" ]] && pid_is "$pid" postgres; then
        find_pg_bindir || die "PostgreSQL binaries not found; cannot run pg_ctl stop"
        log "postgres: stopping (pid $pid)"
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t "$TIMEOUT" stop >&2
    else
        [[ -f "$pidfile" ]] && pg_clear_stale_pid
        if pg_answers; then
            log "postgres: something answers on $HOST:$PG_PORT but it was not started from $PGDATA_DIR; leaving it alone"
        else
            log "postgres: not running"
        fi
    fi
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

redis_up() {
    if [[ -n "$REDIS_URL_OVERRIDE" ]]; then
        wait_until "$TIMEOUT" redis_answers \
            || die "FLOODGATE__REDIS__URL is set but that Redis does not answer within ${TIMEOUT}s"
        log "redis: using external FLOODGATE__REDIS__URL (answers)"
        return 0
    fi

    if redis_answers; then
        log "redis: reusing server already answering on $HOST:$REDIS_PORT"
        return 0
    fi

    mkdir -p -- "$DATA" "$REDIS_DIR"
    local pid old_port
    pid="$(cat -- "$REDIS_PID" 2>/dev/null || true)"
    if pid_is "$pid" redis-server; then
        old_port="$(cat -- "$REDIS_PORT_FILE" 2>/dev/null || true)"
        if [[ -z "$old_port" ]]; then
            # Fallback: redis sets its title to "redis-server 127.0.0.1:PORT".
            old_port="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | awk '{print $2}' || true)"
            old_port="${old_port##*:}"
        fi
        if [[ -n "$old_port" && "$old_port" != "$REDIS_PORT" ]]; then
            die "our redis-server (pid $pid) is already running on port $old_port, not $REDIS_PORT; run '$0 down' first"
        fi
        log "redis: our redis-server (pid $pid) is running but not answering yet; waiting"
    else
        [[ -f "$REDIS_PID" ]] && { log "redis: removing stale $REDIS_PID"; rm -f -- "$REDIS_PID"; }
        printf '%s\n' "$REDIS_PORT" >"$REDIS_PORT_FILE"
        log "redis: starting on $HOST:$REDIS_PORT (log: $REDIS_LOG)"
        # No persistence: Redis only holds the waiting room (ephemeral by
        # design); Postgres is the source of truth for inventory and orders.
        if ! redis-server --port "$REDIS_PORT" --bind "$HOST" --dir "$REDIS_DIR" \
            --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
            --save '' --appendonly no >&2 9>&-; then
            show_log_tail "$REDIS_LOG"
            die "redis-server failed to start"
        fi
    fi
    # Poll until it answers. redis-server --daemonize returns before the
    # child binds its port, so a bind failure only shows up as the child
    # exiting: notice that (after a short grace period for the pidfile to
    # appear) instead of waiting out the whole timeout.
    local started=$SECONDS deadline=$((SECONDS + TIMEOUT))
    until redis_answers; do
        pid="$(cat -- "$REDIS_PID" 2>/dev/null || true)"
        if ((SECONDS - started >= 2)) && ! pid_is "$pid" redis-server; then
            show_log_tail "$REDIS_LOG"
            die "redis-server exited during startup (see $REDIS_LOG)"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$REDIS_LOG"
            die "redis did not answer on $HOST:$REDIS_PORT within ${TIMEOUT}s"
        fi
        sleep 0.5
    done
}

redis_down() {
    if [[ -n "$REDIS_URL_OVERRIDE" ]]; then
        log "redis: FLOODGATE__REDIS__URL is set; not stopping an external server"
        return 0
    fi
    local pid port
    pid="$(cat -- "$REDIS_PID" 2>/dev/null || true)"
    if pid_is "$pid" redis-server; then
        # Talk to the port it was started on, even if FLOODGATE_REDIS_PORT
        # has changed since.
        port="$(cat -- "$REDIS_PORT_FILE" 2>/dev/null || true)"
        log "redis: stopping (pid $pid)"
        # nosave: nothing to persist (see redis_up).
        redis-cli -h "$HOST" -p "${port:-$REDIS_PORT}" shutdown nosave >/dev/null 2>&1 || true
        if ! wait_until "$TIMEOUT" pid_gone "$pid"; then
            log "redis: did not exit after SHUTDOWN; sending SIGTERM"
            kill "$pid" 2>/dev/null || true
        fi
        rm -f -- "$REDIS_PID"
    else
        [[ -f "$REDIS_PID" ]] && rm -f -- "$REDIS_PID"
        if redis_answers; then
            log "redis: something answers on $HOST:$REDIS_PORT but it was not started from $DATA; leaving it alone"
        else
            log "redis: not running"
        fi
    fi
}

# ---------------------------------------------------------------------------
# Redis Cluster (issue 14): 3 masters, 3 replicas, cluster-node-timeout 2 s
# so a failover takes seconds
# ---------------------------------------------------------------------------

cluster_ports() { seq "$CLUSTER_PORT" $((CLUSTER_PORT + 5)); }

cluster_nodes() {
    local port nodes=()
    for port in $(cluster_ports); do nodes+=("$HOST:$port"); done
    (IFS=,; printf '%s' "${nodes[*]}")
}

cluster_node_answers() { redis-cli -h "$HOST" -p "$1" ping >/dev/null 2>&1; }

cluster_ok() { redis-cli -h "$HOST" -p "$CLUSTER_PORT" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

cluster_up() {
    mkdir -p -- "$CLUSTER_DIR"
    local port dir
    for port in $(cluster_ports); do
        dir="$CLUSTER_DIR/$port"
        mkdir -p -- "$dir"
        if cluster_node_answers "$port"; then
            continue
        fi
        log "redis cluster: starting node $HOST:$port"
        redis-server --port "$port" --bind "$HOST" --dir "$dir" --daemonize yes \
            --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' --appendonly no \
            --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
            --cluster-port $((port + CLUSTER_BUS_OFFSET)) \
            >&2 9>&- || die "redis-server for cluster node $port failed to start"
    done
    for port in $(cluster_ports); do
        wait_until "$TIMEOUT" cluster_node_answers "$port" \
            || { show_log_tail "$CLUSTER_DIR/$port/redis.log"; die "cluster node $port did not answer"; }
    done
    if ! cluster_ok; then
        # A node that knows other nodes is part of a cluster already (one
        # that is still forming); only fresh nodes are joined into a new one.
        if [[ "$(redis-cli -h "$HOST" -p "$CLUSTER_PORT" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')" == 1 ]]; then
            log "redis cluster: creating (3 masters, 3 replicas)"
            local nodes=()
            for port in $(cluster_ports); do nodes+=("$HOST:$port"); done
            redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >&2 \
                || die "redis-cli --cluster create failed"
        fi
        wait_until "$TIMEOUT" cluster_ok || die "the Redis Cluster did not reach cluster_state:ok"
    fi
    log "redis cluster: ok on $(cluster_nodes)"
}

cluster_down() {
    local port pid
    for port in $(cluster_ports); do
        pid="$(cat -- "$CLUSTER_DIR/$port/redis.pid" 2>/dev/null || true)"
        if pid_is "$pid" redis-server; then
            log "redis cluster: stopping node $port (pid $pid)"
            redis-cli -h "$HOST" -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
            wait_until "$TIMEOUT" pid_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f -- "$CLUSTER_DIR/$port/redis.pid"
    done
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------

cmd_up() {
    init_pg_os_user_if_needed
    ensure_binaries
    mkdir -p -- "$DATA"
    # Serialise concurrent `up`/`down` (e.g. run.sh and test.sh started
    # together) so they do not race on initdb or double-start a server.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$DATA/.services.lock"
        flock -w $((TIMEOUT * 4)) 9 || die "timed out waiting for $DATA/.services.lock"
    fi
    pg_up
    redis_up
    [[ "$CLUSTER" == 1 ]] && cluster_up
    log "ready: postgres $(redact "$DATABASE_URL"), redis $(redact "$REDIS_URL")"
}

cmd_down() {
    init_pg_os_user_if_needed
    find_pg_bindir || true
    if [[ -d "$DATA" ]] && command -v flock >/dev/null 2>&1; then
        exec 9>"$DATA/.services.lock"
        flock -w $((TIMEOUT * 4)) 9 || die "timed out waiting for $DATA/.services.lock"
    fi
    local rc=0
    pg_down || rc=1
    if command -v redis-cli >/dev/null 2>&1; then
        redis_down || rc=1
        [[ -d "$CLUSTER_DIR" ]] && { cluster_down || rc=1; }
    else
        log "redis: redis-cli not installed; nothing to stop"
    fi
    return "$rc"
}

cmd_status() {
    find_pg_bindir || true
    local rc=0
    if pg_answers; then
        echo "postgres: up   ($(redact "$DATABASE_URL"))"
    else
        echo "postgres: down ($(redact "$DATABASE_URL"))"
        rc=3
    fi
    if command -v redis-cli >/dev/null 2>&1 && redis_answers; then
        echo "redis:    up   ($(redact "$REDIS_URL"))"
    else
        echo "redis:    down ($(redact "$REDIS_URL"))"
        rc=3
    fi
    if [[ -d "$CLUSTER_DIR" ]] && command -v redis-cli >/dev/null 2>&1; then
        if cluster_ok; then echo "cluster:  up   ($(cluster_nodes))"; else echo "cluster:  down ($(cluster_nodes))"; fi
    fi
    return "$rc"
}

cmd_env() {
    # %q quoting keeps the output safe to eval even for unusual override URLs.
    printf 'export FLOODGATE__DATABASE__URL=%q\n' "$DATABASE_URL"
    printf 'export FLOODGATE__REDIS__URL=%q\n' "$REDIS_URL"
    if [[ "${CLUSTER:-0}" == 1 ]]; then
        local port nodes=()
        for port in $(cluster_ports); do nodes+=("redis://$HOST:$port"); done
        printf 'export FLOODGATE__REDIS__CLUSTER_NODES=%q\n' "$(IFS=,; echo "${nodes[*]}")"
    fi
}

cmd_psql() {
    find_pg_bindir || true
    local psql_bin
    psql_bin="$(find_psql)" || die "psql not found; run '$0 up' first"
    exec "$psql_bin" "$DATABASE_URL" "$@"
}

# The postgres OS user only matters when we manage the server ourselves.
init_pg_os_user_if_needed() {
    [[ -n "$PG_URL_OVERRIDE" ]] || init_pg_os_user
}

usage() {
    sed -n '2,26p' -- "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    validate_port FLOODGATE_PG_PORT "$PG_PORT"
    validate_port FLOODGATE_REDIS_PORT "$REDIS_PORT"
    [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "FLOODGATE_SERVICES_TIMEOUT must be a number of seconds"

    local cmd="${1:-up}"
    (($#)) && shift
    if [[ ("$cmd" == up || "$cmd" == env) && "${1:-}" == --redis-cluster ]]; then
        CLUSTER=1
        shift
    fi
    validate_port FLOODGATE_REDIS_CLUSTER_PORT "$CLUSTER_PORT"
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) cmd_env ;;
        psql) cmd_psql "$@" ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
