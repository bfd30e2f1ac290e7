#!/bin/sh
# dom0 side of the blk scenario: attach the storage domain's disk to the
# guest (domain 2) as xvdb, then wait until the guest closes its frontend
# (it unbinds blkfront after its test) and report the xenstore states.
S=1; G=2; DEVID=51728
FE=/local/domain/$G/device/vbd/$DEVID
BE=/local/domain/$S/backend/vbd/$G/$DEVID
i=0
while [ $i -lt 90 ]; do
    xenstore-read /local/domain/$G/name >/dev/null 2>&1 && \
        xenstore-read /local/domain/$S/name >/dev/null 2>&1 && break
    sleep 1; i=$((i + 1))
done
xl list
attached=0
xenstore-ls -fp /local/domain/$S | head -30
for try in 1 2 3; do
    echo "=== DOM0: blk block-attach try $try at $(cut -d' ' -f1 /proc/uptime)"
    if xl block-attach $G "format=raw,vdev=xvdb,access=rw,backend=$S,target=/dev/storage-disk,script=/bin/true"; then
        attached=1; break
    fi
    echo "=== DOM0: blk after failed attach:"
    xenstore-ls -fp /local/domain/$S/backend 2>&1 | head -40
    xenstore-ls -fp $FE 2>&1 | head -20
    xl block-detach $G xvdb >/dev/null 2>&1
    xenstore-rm $BE >/dev/null 2>&1
    xenstore-rm $FE >/dev/null 2>&1
    xenstore-rm /libxl/$G/device/vbd/$DEVID >/dev/null 2>&1
    sleep 5
done
echo "=== DOM0: blk attached=$attached at $(cut -d' ' -f1 /proc/uptime)"
xenstore-ls -f $BE 2>/dev/null
state=""
i=0
while [ $attached = 1 ] && [ $i -lt 240 ]; do
    state=$(xenstore-read $FE/state 2>/dev/null)
    case "$state" in
        5|6|"") break ;;
    esac
    sleep 1; i=$((i + 1))
done
echo "=== DOM0: blk frontend state '$state' backend state '$(xenstore-read $BE/state 2>/dev/null)' after ${i}s"
if [ $attached = 1 ]; then
    xl block-detach $G xvdb
    echo "=== DOM0: blk block-detach rc=$? backend dir now: '$(xenstore-ls $BE 2>&1 | head -3 | tr '\n' ' ')'"
fi
echo "=== DOM0 SCENARIO DONE"
