#!/bin/sh
# The Linux driver domain of `cargo xtask bench blk` (blk-linux.toml): it
# owns the passed-through disk as /dev/vda and serves it with xen-blkback.
# No hotplug script runs in a driver domain (xl devd is not here), so this
# loop does the block script's part: for each new vbd under its backend
# directory it writes `physical-device` (major:minor of /dev/vda in hex,
# what xen-blkback's backend_changed watch waits for) and
# `hotplug-status=connected`.
say() { echo "=== DRIVER $*"; }
i=0
while [ ! -b /dev/vda ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
if [ ! -b /dev/vda ]; then
    say "FAIL no /dev/vda"
    exit 1
fi
# xtask wrote its signature into sector 0: the first DMA brings it back
# only if the calibrated dma-ranges window is right.
sig=$(dd if=/dev/vda bs=27 count=1 2>/dev/null)
if [ "$sig" != "XEN-RT PASSTHROUGH DISK v1 " ]; then
    say "FAIL sector 0 is not the xtask signature: wrong DMA window?"
    exit 1
fi
dev=$(cat /sys/block/vda/dev)
hex=$(printf '%x:%x' "${dev%%:*}" "${dev##*:}")
me=$(xenstore-read domid)
be=/local/domain/$me/backend/vbd
say "ready: dom$me /dev/vda $dev ($(cat /sys/block/vda/size) sectors) physical-device $hex"
while true; do
    for fe in $(xenstore-list $be 2>/dev/null); do
        for d in $(xenstore-list $be/$fe 2>/dev/null); do
            p=$be/$fe/$d
            xenstore-read $p/physical-device >/dev/null 2>&1 && continue
            xenstore-write $p/physical-device "$hex" $p/hotplug-status connected
            say "vbd $fe/$d: physical-device $hex"
        done
    done
    usleep 100000
done
