#!/bin/sh
# dom0 side of `cargo xtask bench blk` (tests/bench/blk-*.toml): attaches
# the backend domain's disk (dom1: storage-domain's extent `disk`, or the
# Linux driver domain's /dev/vda; `bench_target=` on dom0's command line)
# to the guest (dom2) as xvdb, reports when the backend reached InitWait,
# and waits until the guest has finished (it unbinds xen-blkfront:
# frontend state Closing/Closed).
BE=1; FE=2; DEVID=51728
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "=== DOM0: bench $* at $(up)"; }
bedir=/local/domain/$BE/backend/vbd/$FE/$DEVID
fedir=/local/domain/$FE/device/vbd/$DEVID

i=0
while [ $i -lt 120 ]; do
    xenstore-read /local/domain/$BE/name >/dev/null 2>&1 &&
        xenstore-read /local/domain/$FE/name >/dev/null 2>&1 && break
    sleep 1; i=$((i + 1))
done
# storage-domain: its extent `disk`; Linux: /dev/vda (the driver domain's
# loop writes physical-device itself, the name is only recorded).
TARGET=$(sed -n 's/.*bench_target=\([^ ]*\).*/\1/p' /proc/cmdline)
xl list

# The first time the backend shows InitWait (or later states).
(
    n=0
    while [ $n -lt 12000 ]; do
        st=$(xenstore-read $bedir/state 2>/dev/null)
        case "$st" in
            2|3|4) echo "=== DOM0: bench INITWAIT state=$st at $(up)"; exit 0 ;;
        esac
        usleep 50000; n=$((n + 1))
    done
) &

say "attach start backend dom$BE target $TARGET"
ok=0
for try in 1 2 3 4 5 6 7 8 9 10; do
    if xl block-attach $FE "format=raw,vdev=xvdb,access=rw,backend=$BE,script=/bin/true,target=$TARGET"; then
        ok=1
        say "attach ok (try $try)"
        break
    fi
    say "attach try $try failed"
    xl block-detach $FE xvdb >/dev/null 2>&1
    xenstore-rm $bedir >/dev/null 2>&1
    xenstore-rm $fedir >/dev/null 2>&1
    xenstore-rm /libxl/$FE/device/vbd/$DEVID >/dev/null 2>&1
    sleep 3
done
if [ $ok = 1 ]; then
    # Diagnostics when the frontend has not connected 30 s after the attach.
    n=0
    while [ $n -lt 30 ] && [ "$(xenstore-read $fedir/state 2>/dev/null)" != 4 ]; do
        sleep 1; n=$((n + 1))
    done
    if [ "$(xenstore-read $fedir/state 2>/dev/null)" != 4 ]; then
        say "frontend not connected after 30 s:"
        xenstore-ls -f $bedir 2>&1 | head -40
        xenstore-ls -f $fedir 2>&1 | head -40
        xenstore-ls -f /local/domain/$BE/error 2>&1 | head -10
        xenstore-ls -f /local/domain/$FE/error 2>&1 | head -10
    fi
    n=0
    while [ $n -lt 1500 ]; do
        st=$(xenstore-read $fedir/state 2>/dev/null)
        case "$st" in 5|6|"") break ;; esac
        sleep 1; n=$((n + 1))
    done
    say "guest done (frontend state '$st' after ${n}s)"
    xl block-detach $FE xvdb >/dev/null 2>&1
    say "detached rc=$?"
else
    say "attach FAILED"
fi
echo "=== DOM0 SCENARIO DONE"
