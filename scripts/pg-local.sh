#!/usr/bin/env bash
# A local PostgreSQL for `make run`, so the whole system runs with one
# command when no DSN is configured. Not for tests (scripts/with-pg.sh).
#
#   scripts/pg-local.sh start    create on first use, start if stopped, print the DSN
#   scripts/pg-local.sh stop     stop the server (the data stays)
#   scripts/pg-local.sh status   say whether it runs; exit 0 if it does
#   scripts/pg-local.sh dsn      print the DSN (the server may be stopped)
#
# Everything lives under $ARB_VAR/pg (default: var/pg at the repo root): data/,
# the server log, and a generated password. The server listens on 127.0.0.1
# only, on its own port ($ARB_PG_PORT, default 54329), with no Unix socket,
# and asks for a password (scram-sha-256), so it neither clashes with nor
# exposes anything to the machine's other clusters. As root the server runs as
# the postgres user, which PostgreSQL requires; var/pg is then owned by it.
# Only the DSN goes to stdout: `export ARB_PG_DSN=$(scripts/pg-local.sh start)`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
var=${ARB_VAR:-$repo/var}
dir=$var/pg
data=$dir/data
port=${ARB_PG_PORT:-54329}
user=arb
db=arb

say() { echo "pg-local: $*" >&2; }
die() { say "$*"; exit 1; }

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bin" ] && [ -x "$bin/pg_ctl" ] ||
    die "no PostgreSQL server installed: apt-get install postgresql (make deps)"

# Runs a server binary as the owner of the data: postgres when we are root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

dsn() {
    local pw
    pw=$(cat "$dir/password" 2>/dev/null) || die "no password file in $dir: run 'start' first"
    echo "postgresql://$user:$pw@127.0.0.1:$port/$db"
}

running() { [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

create() {
    say "creating a local PostgreSQL in $dir (first use)"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "user postgres does not exist (install postgresql)"
        chown postgres:postgres "$dir"
        as_owner test -w "$dir" ||
            die "user postgres cannot write $dir (a parent directory is private?); set ARB_VAR to a directory it can reach"
    fi
    local pw pwfile
    pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    pwfile=$(mktemp)
    echo "$pw" > "$pwfile"
    [ "$(id -u)" -eq 0 ] && chown postgres "$pwfile"
    as_owner "$bin/initdb" -D "$data" -U "$user" --pwfile="$pwfile" --auth=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        rm -f "$pwfile"
        die "initdb failed, see $dir/initdb.log"
    }
    rm -f "$pwfile"
    (umask 077 && echo "$pw" > "$dir/password")
    cat >> "$data/postgresql.conf" <<EOF

# scripts/pg-local.sh: a private server for make run
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
EOF
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        die "the new server did not start, see $dir/server.log"
    PGPASSWORD=$pw "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -qAt \
        -c "CREATE DATABASE $db" >/dev/null || die "cannot create database $db"
}

case "${1:-}" in
start)
    if [ ! -f "$data/PG_VERSION" ]; then
        create
    elif ! running; then
        say "starting the local PostgreSQL on 127.0.0.1:$port"
        as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
            die "the server did not start, see $dir/server.log"
    fi
    dsn
    ;;
stop)
    if running; then
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        say "stopped"
    fi
    ;;
status)
    if running; then
        say "running on 127.0.0.1:$port, data in $data"
    else
        say "not running"
        exit 3
    fi
    ;;
dsn) dsn ;;
*)
    echo "usage: scripts/pg-local.sh start|stop|status|dsn" >&2
    exit 2
    ;;
esac
