#!/usr/bin/env bash
# Throw-away PostgreSQL server on 127.0.0.1 for the tests of shared Optuna studies.
#
#   .ci/postgres.sh start   install from Debian's packages if needed, start a server with a
#                           fresh data directory under /tmp, create database `optuna`, print
#                           its URL on stdout (the last line)
#   .ci/postgres.sh stop    stop that server and delete its data directory
#
# The server runs as the unprivileged `postgres` user (PostgreSQL refuses to run as root) and
# trusts connections from 127.0.0.1 only. PGPORT (default 55432) and PGDATA_DIR (default
# /tmp/house-multitask-pg) change where it listens and keeps its files.
set -euo pipefail

PORT="${PGPORT:-55432}"
DATA_DIR="${PGDATA_DIR:-/tmp/house-multitask-pg}"
DATABASE="optuna"

find_bin() {
    # Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<version>/bin.
    local candidate
    for candidate in /usr/lib/postgresql/*/bin; do
        if [[ -x "$candidate/pg_ctl" ]]; then
            echo "$candidate"
            return
        fi
    done
}

install_if_missing() {
    if [[ -n "$(find_bin)" ]]; then
        return
    fi
    echo "installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

as_postgres() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    install_if_missing
    local bin
    bin="$(find_bin)"
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres:postgres "$DATA_DIR"
    fi
    as_postgres "$bin/initdb" -D "$DATA_DIR" -U postgres -A trust --no-sync >/dev/null
    as_postgres "$bin/pg_ctl" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA_DIR -c fsync=off" start >/dev/null
    as_postgres "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DATABASE"
    echo "postgresql://postgres@127.0.0.1:$PORT/$DATABASE"
}

stop() {
    local bin
    bin="$(find_bin)"
    if [[ -n "$bin" && -f "$DATA_DIR/postmaster.pid" ]]; then
        as_postgres "$bin/pg_ctl" -D "$DATA_DIR" -m fast -w stop >/dev/null
    fi
    rm -rf "$DATA_DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
