#!/usr/bin/env bash
# supervise.sh NAME COMMAND...: runs an arb-host command and restarts it when
# it exits with status 70, the host's "a plugin crashed" status (the line
# before it in the log names the instance, .so, build id and callback), or
# 75, "the broker no longer holds this run" (a broker that came back empty:
# the restart begins a new run; the line before it says so), or
# dies of a signal it did not get from us (kill -9, the OOM killer: status
# 128 + signal), as the systemd unit's Restart=on-failure does.
# Back-off: 1 s after the first crash, doubling to 30 s; a run that lasted
# 60 s or more starts the back-off again. Six crashes in a row, each within
# 60 s of its start, end the supervision with status 70: a host that cannot
# stay up (a plugin that crashes in start, added by a reload and still in
# the file) is left down with the reason, not restarted forever. Any other exit status ends the
# supervision with that status (0: stopped; 1: could not start, e.g. an
# address in use; 2: bad configuration; 78: a group-less host whose group
# has members, [bus] consume = all beside consume = group: restarting would
# not help).
# A restart resumes the run: `--new-run` is passed to the first start only
# (restarting with it began an empty run after every crash, and whatever the
# journal held that PostgreSQL did not yet was gone with the old run).
# SIGINT/SIGTERM go to the host, which stops cleanly. Used by scripts/run.sh
# and scripts/run-split.sh; the systemd unit does the same with Restart=.
set -uo pipefail
name=$1
shift
# ARB_RESTART_DELAY: the first back-off in seconds (default 1; tests use 0).
first_delay=${ARB_RESTART_DELAY:-1}
delay=$first_delay
restarts=0
quick=0
child=
forward() {
    stopping=1
    [ -n "$child" ] && kill -"$1" "$child" 2>/dev/null
}
stopping=0
trap 'forward INT' INT
trap 'forward TERM' TERM
cmd=("$@")
while :; do
    started=$SECONDS
    "${cmd[@]}" &
    child=$!
    # Every later start resumes the run this one begins.
    resume=()
    for a in "${cmd[@]}"; do
        [ "$a" = "--new-run" ] || resume+=("$a")
    done
    cmd=("${resume[@]}")
    # `wait` returns early when a trapped signal arrives: wait again until
    # the host itself has exited.
    while :; do
        wait "$child"
        status=$?
        kill -0 "$child" 2>/dev/null || break
    done
    child=
    if [ "$stopping" -eq 1 ] || { [ "$status" -ne 70 ] && [ "$status" -ne 75 ] && [ "$status" -le 128 ]; }; then
        [ "$status" -eq 78 ] && echo "supervise: $name: arb-host exited with status 78 (its consumer group has members, see the line above): not restarted" >&2
        exit "$status"
    fi
    restarts=$((restarts + 1))
    if [ $((SECONDS - started)) -ge 60 ]; then
        delay=$first_delay
        quick=0
    fi
    quick=$((quick + 1))
    if [ "$status" -eq 70 ]; then
        why="exited with status 70 (a plugin crashed, see the line above)"
    elif [ "$status" -eq 75 ]; then
        why="exited with status 75 (the broker lost the run, see the line above; the restart begins a new run)"
    else
        why="died of signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null || echo '?'))"
    fi
    if [ "$quick" -ge 6 ]; then
        echo "supervise: $name: arb-host $why; $quick crashes in a row, each within 60 s of its start: not restarted (fix the cause named above, then start it again)" >&2
        exit 70
    fi
    echo "supervise: $name: arb-host $why; restart $restarts in ${delay} s" >&2
    sleep "$delay" &
    child=$!
    wait "$child"
    child=
    [ "$stopping" -eq 1 ] && exit 70
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
done
