#!/bin/sh
# dom0 side of the console scenario (see ../console.toml): creates the
# guest's secondary console device/console/1 with the console domain as
# backend, reports the xenbus states once both ends are Connected, and
# after each of the guest's rounds detaches it and attaches it again
# (ROUNDS connections in all), then detaches it for good.
S=1; G=2; DEV=1; ROUNDS=3
FE=/local/domain/$G/device/console/$DEV
BE=/local/domain/$S/backend/console/$G/$DEV
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "=== DOM0: console $* at $(up)"; }

i=0
while [ $i -lt 120 ]; do
    xenstore-read /local/domain/$S/name >/dev/null 2>&1 &&
        xenstore-read /local/domain/$G/name >/dev/null 2>&1 && break
    sleep 1; i=$((i + 1))
done
xl list

# wait_key PATH VALUE SECONDS
wait_key() {
    n=0
    while [ $n -lt $3 ]; do
        [ "$(xenstore-read $1 2>/dev/null)" = "$2" ] && return 0
        sleep 1; n=$((n + 1))
    done
    return 1
}

# attach: the nodes libxl__device_console_add writes for a channel, with
# libxl__device_generic_add's permissions: the frontend directory is the
# guest's (backend may read), its toolstack keys the backend's (guest may
# read), the backend directory the backend's (guest may read). The
# backend directory exists before the frontend's state says
# Initialising (Linux reads the backend path when it probes), and its
# `frontend` node comes last (the backend takes the device up then).
attach() {
    round=$1
    xenstore-write $BE/frontend-id $G $BE/online 1 $BE/state 1 \
        $BE/protocol vt100 $BE/name scenario
    xenstore-chmod -r $BE n$S r$G
    xenstore-write $FE/backend $BE $FE/backend-id $S
    xenstore-chmod -r $FE n$G r$S
    for kv in "limit 1048576" "type ioemu" "output pty" "name scenario"; do
        set -- $kv
        xenstore-write $FE/$1 "$2"
        xenstore-chmod $FE/$1 n$S r$G
    done
    xenstore-write $FE/tty ""
    xenstore-chmod $FE/tty n$S r$G
    xenstore-write $FE/protocol vt100
    xenstore-write $FE/state 1
    xenstore-write $BE/frontend $FE
    xenstore-chmod $BE/frontend n$S r$G
    say "attach round $round rc=$?"
}

# connected SECONDS: until backend and frontend are both Connected.
connected() {
    n=0
    while [ $n -lt $1 ]; do
        b=$(xenstore-read $BE/state 2>/dev/null)
        f=$(xenstore-read $FE/state 2>/dev/null)
        if [ "$b" = 4 ] && [ "$f" = 4 ]; then
            say "states backend=$b frontend=$f ring-ref=$(xenstore-read $FE/ring-ref) port=$(xenstore-read $FE/port)"
            return 0
        fi
        sleep 1; n=$((n + 1))
    done
    say "states backend=$b frontend=$f (not connected)"
    return 1
}

# detach: as libxl's device removal: online 0 and Closing, wait for the
# backend's Closed, remove the frontend; the console domain removes the
# backend directory itself (dom0 only cleans up after it if it did not).
detach() {
    xenstore-write $BE/online 0 $BE/state 5
    wait_key $BE/state 6 30; closed=$?
    f=$(xenstore-read $FE/state 2>/dev/null)
    xenstore-rm $FE
    n=0
    while xenstore-read $BE/state >/dev/null 2>&1 && [ $n -lt 10 ]; do sleep 1; n=$((n + 1)); done
    left=$(xenstore-read $BE/state 2>/dev/null)
    say "detach round $1 backend-closed=$([ $closed = 0 ] && echo yes || echo no) frontend=$f backend-dir-left='$left'"
    xenstore-rm $BE >/dev/null 2>&1
}

if ! wait_key /local/domain/$G/data/console-ready 1 240; then
    say "guest never became ready"
fi
r=1
while [ $r -le $ROUNDS ]; do
    attach $r
    connected 60
    if ! wait_key /local/domain/$G/data/console-round $r 120; then
        say "guest never finished round $r"
        break
    fi
    detach $r
    r=$((r + 1))
done
say "rounds done: $((r - 1)) of $ROUNDS"
xl list | sed 's/^/=== DOM0: xl list: /'
echo "=== DOM0 SCENARIO DONE"
