#!/bin/sh
# The guest of `cargo xtask bench blk`: waits for xvdb, runs blkload over
# 64 MiB at 1 MiB into it (`secs=N` on the command line: seconds per test),
# then unbinds xen-blkfront, which tells dom0 it is done.
SECS=$(sed -n 's/.*secs=\([0-9.]*\).*/\1/p' /proc/cmdline)
say() { echo "=== GUEST(bench) $*"; }
i=0
while [ ! -b /dev/xvdb ] && [ $i -lt 300 ]; do sleep 1; i=$((i + 1)); done
if [ ! -b /dev/xvdb ]; then
    say "RESULT FAIL no xvdb after ${i}s; xenbus: $(ls /sys/bus/xen/devices | tr '\n' ' ')"
    dmesg | grep -i -E 'blkfront|xvd|xen' | tail -8
    echo vbd-51728 > /sys/bus/xen/drivers/vbd/unbind 2>/dev/null
    exit 1
fi
q=/sys/block/xvdb/queue
say "xvdb $(cat /sys/block/xvdb/size) sectors max_hw_sectors_kb=$(cat $q/max_hw_sectors_kb) max_segments=$(cat $q/max_segments) nr_requests=$(cat $q/nr_requests)"
blkload /dev/xvdb --offset-mib 1 --region-mib 64 --seconds "${SECS:-5}"
rc=$?
say "RESULT $([ $rc = 0 ] && echo OK || echo FAIL) blkload rc=$rc"
echo vbd-51728 > /sys/bus/xen/drivers/vbd/unbind 2>/dev/null
