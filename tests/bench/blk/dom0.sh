#!/bin/sh
# dom0 side of `cargo xtask bench blk` (tests/bench/blk-*.toml): attaches
# the backend domain's disk (dom1: storage-domain's extent `disk`, or the
# Linux driver domain's /dev/vda) to the guest (dom2) as xvdb, reports when
# the backend reached InitWait, and waits until the guest has finished
# (it unbinds xen-blkfront: frontend state Closing/Closed).
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
name=$(xenstore-read /local/domain/$BE/name 2>/dev/null)
case "$name" in
    storage) TARGET=disk ;;
    *) TARGET=/dev/vda ;;
esac
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

say "attach start backend dom$BE ($name) target $TARGET"
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
