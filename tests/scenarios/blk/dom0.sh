#!/bin/sh
# dom0 side of the blk scenario (see ../blk.toml): attaches the storage
# domain's vbds to the guests and drives the detach/attach cycles. Guests
# signal "done with this device" by unbinding xen-blkfront (frontend state
# Closed), which dom0 watches in xenstore.
S=1; A=2; B=3; H=4
XVDA=51712; XVDB=51728; XVDC=51744
BOOT=$(sed -n 's/.*boot=\([0-9]*\).*/\1/p' /proc/cmdline)
CYCLES=10
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "=== DOM0: blk $* at $(up)"; }
fe() { echo /local/domain/$1/device/vbd/$2; }
be() { echo /local/domain/$S/backend/vbd/$1/$2; }

i=0
while [ $i -lt 120 ]; do
    ok=1
    for d in $S $A $B; do xenstore-read /local/domain/$d/name >/dev/null 2>&1 || ok=0; done
    [ $ok = 1 ] && break
    sleep 1; i=$((i + 1))
done
xl list

# attach DOM VDEV DEVID ACCESS EXTENT
attach() {
    for try in 1 2 3; do
        if xl block-attach $1 "format=raw,vdev=$2,access=$4,backend=$S,script=/bin/true,target=$5"; then
            say "attach dom$1 $2 extent $5 $4 ok (try $try)"
            return 0
        fi
        say "attach dom$1 $2 try $try failed; backend: $(xenstore-ls -f $(be $1 $3) 2>&1 | tr '\n' ' ' | head -c 600)"
        xl block-detach $1 $2 >/dev/null 2>&1
        xenstore-rm $(be $1 $3) >/dev/null 2>&1
        xenstore-rm $(fe $1 $3) >/dev/null 2>&1
        xenstore-rm /libxl/$1/device/vbd/$3 >/dev/null 2>&1
        sleep 3
    done
    say "attach dom$1 $2 extent $5 FAILED"
    return 1
}

# wait_closed DOM DEVID SECONDS: until the frontend is Closing/Closed/gone.
wait_closed() {
    n=0
    while [ $n -lt $3 ]; do
        st=$(xenstore-read $(fe $1 $2)/state 2>/dev/null)
        case "$st" in 5|6|"") return 0 ;; esac
        sleep 1; n=$((n + 1))
    done
    return 1
}

detach() {
    xl block-detach $1 $2 >/dev/null 2>&1
    rc=$?
    say "detach dom$1 $2 rc=$rc backend dir left: '$(xenstore-ls $(be $1 $3) 2>/dev/null | head -1)'"
}

if [ "$BOOT" = 2 ]; then
    attach $A xvdb $XVDB rw a
    attach $B xvdb $XVDB rw b
    wait_closed $A $XVDB 300 || say "guest-a xvdb still open"
    wait_closed $B $XVDB 300 || say "guest-b xvdb still open"
    detach $A xvdb $XVDB
    detach $B xvdb $XVDB
    echo "=== DOM0 SCENARIO DONE"
    exit 0
fi

attach $A xvdb $XVDB rw a
attach $A xvdc $XVDC ro r
attach $B xvdb $XVDB rw b
# The hostile frontend joins while the guests' transfers run.
sleep 4
attach $H xvda $XVDA rw h
attach $H xvdb $XVDB ro r

# guest-b: CYCLES detach/attach rounds, each ended by the guest unbinding.
c=0
while [ $c -lt $CYCLES ]; do
    if ! wait_closed $B $XVDB 240; then
        say "cycle $c: guest-b never closed xvdb"
        break
    fi
    detach $B xvdb $XVDB
    c=$((c + 1))
    attach $B xvdb $XVDB rw b || break
    say "cycle $c attached"
done
wait_closed $B $XVDB 240 && detach $B xvdb $XVDB
say "cycles done: $c of $CYCLES"

wait_closed $A $XVDB 300 || say "guest-a xvdb still open"
wait_closed $A $XVDC 60 || say "guest-a xvdc still open"
detach $A xvdb $XVDB
detach $A xvdc $XVDC

n=0
while [ $n -lt 60 ]; do
    st=$(xenstore-read $(be $H $XVDA)/state 2>/dev/null)
    case "$st" in 5|6|"") break ;; esac
    sleep 1; n=$((n + 1))
done
say "hostile backend state '$st'"
detach $H xvda $XVDA
wait_closed $H $XVDB 60
detach $H xvdb $XVDB
echo "=== DOM0 SCENARIO DONE"
