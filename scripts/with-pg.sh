#!/usr/bin/env bash
# Runs a command under a throwaway PostgreSQL server and drops the server
# afterwards: `scripts/with-pg.sh COMMAND [ARGS...]`. For the recorder's tests
# and bench; not for `make run` (that is scripts/pg-local.sh).
#
# Uses Debian's pg_virtualenv (postgresql-common). `-t` keeps the cluster's
# config and data in a private temporary directory even as root, so two runs
# at once never fight over /etc/postgresql/<v>/regress; as root the cluster
# itself runs as the postgres user (PostgreSQL refuses root) and the command
# runs as the caller. We choose the port ourselves and retry on a clash.
#
# The command sees the PG* variables libpq reads (PGHOST, PGPORT, PGUSER,
# PGPASSWORD, PGDATABASE=postgres) plus:
#   ARB_PG_VERSION, ARB_PG_CLUSTER   to stop/start the server mid-test:
#                                    pg_ctlcluster $ARB_PG_VERSION $ARB_PG_CLUSTER stop
#   ARB_WITH_PG=1                    so a test binary knows it is already inside
# Exit status: the command's; 77 if no PostgreSQL server is installed.
set -uo pipefail

if [ $# -eq 0 ]; then
    echo "usage: scripts/with-pg.sh COMMAND [ARGS...]" >&2
    exit 2
fi
if ! command -v pg_virtualenv >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    echo "with-pg: no PostgreSQL server found: apt-get install postgresql postgresql-common (make deps)" >&2
    exit 77
fi

port_busy() {
    [ -e "/var/run/postgresql/.s.PGSQL.$1" ] && return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    return 1
}

marker=$(mktemp -t with-pg.XXXXXX)
trap 'rm -f "$marker"' EXIT
# The marker is written by the command wrapper: if it stays empty the server
# never came up (e.g. another run took the port between our check and its
# bind), and trying again on another port is safe.
for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    port_busy "$port" && continue
    : > "$marker"
    # pg_virtualenv's own chatter ("Creating new PostgreSQL cluster", and the
    # server log on failure) goes to stderr so the command's stdout stays its own.
    PGPORT=$port ARB_WITH_PG_MARKER=$marker pg_virtualenv -t \
        -o "max_connections=40" -o "shared_buffers=128MB" \
        sh -c 'echo up > "$ARB_WITH_PG_MARKER"; unset ARB_WITH_PG_MARKER
               export ARB_WITH_PG=1 ARB_PG_VERSION="$PGVERSION" ARB_PG_CLUSTER=regress
               exec "$@" 1>&3 2>&4' with-pg "$@" 3>&1 4>&2 1>&2
    rc=$?
    if [ -s "$marker" ]; then
        exit $rc
    fi
    echo "with-pg: the throwaway server did not start (attempt $attempt, port $port, status $rc)" >&2
    sleep 1
done
echo "with-pg: giving up: could not start a throwaway PostgreSQL server" >&2
exit 1
