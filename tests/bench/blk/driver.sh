#!/bin/sh
# The Linux driver domain of `cargo xtask bench blk` (blk-linux.toml): it
# owns the passed-through disk as /dev/vda and serves it with xen-blkback.
# No hotplug script runs in a driver domain (no udev, no xl devd here), so
# the loop at the end does the block script's part: for each vbd
# xen-blkback probed it writes `physical-device` (major:minor of /dev/vda
# in hex, what xen-blkback's backend_changed watch waits for) and
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
say "ready: /dev/vda $dev ($(cat /sys/block/vda/size) sectors) physical-device $hex"
# What udev's xen-backend rule and the block script do in a full driver
# domain: each vbd xen-blkback probed shows up as
# /sys/bus/xen-backend/devices/vbd-<frontend>-<devid> with its xenstore
# `nodename`. (The toolstack makes backend/vbd itself unreadable for this
# domain, so xenstore cannot be listed instead.)
# `seen`: devices handled, so that a connected vbd costs no xenstore
# traffic (nor processes) while the benchmark runs.
seen=" "
while true; do
    now=" "
    for n in /sys/bus/xen-backend/devices/vbd-*; do
        [ -e "$n/nodename" ] || continue
        case "$seen" in *" ${n##*/} "*) now="$now${n##*/} "; continue ;; esac
        p=$(cat "$n/nodename")
        if xenstore-read "$p/physical-device" >/dev/null 2>&1; then
            now="$now${n##*/} "
        elif xenstore-write "$p/physical-device" "$hex" "$p/hotplug-status" connected; then
            now="$now${n##*/} "
            say "${n##*/}: physical-device $hex"
        fi
    done
    seen=$now
    usleep 100000
done
