#!/bin/sh
# Guest side of the blk scenario: wait for /dev/xvdb, write 1 MiB of
# pseudo-random data at offset 1 MiB, drop caches, read it back, compare
# md5sums, then unbind blkfront so that dom0 sees the frontend close.
i=0
while [ ! -b /dev/xvdb ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
if [ ! -b /dev/xvdb ]; then
    echo "=== GUEST(blk) BLK RESULT FAIL no /dev/xvdb after ${i}s"
    exit 1
fi
echo "=== GUEST(blk) xvdb after ${i}s: $(cat /sys/block/xvdb/size) sectors ro=$(cat /sys/block/xvdb/ro)"
dd if=/dev/urandom of=/tmp/pattern bs=4096 count=256 2>/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/tmp/pattern of=/dev/xvdb bs=4096 seek=256 count=256 conv=fsync 2>&1 | tail -1
sync
echo 3 > /proc/sys/vm/drop_caches
blockdev --flushbufs /dev/xvdb 2>/dev/null
dd if=/dev/xvdb of=/tmp/back bs=4096 skip=256 count=256 2>&1 | tail -1
t1=$(cut -d' ' -f1 /proc/uptime)
a=$(md5sum < /tmp/pattern | cut -d' ' -f1)
b=$(md5sum < /tmp/back | cut -d' ' -f1)
if [ "$a" = "$b" ]; then r=OK; else r=FAIL; fi
echo "=== GUEST(blk) BLK RESULT $r written $a read $b (write+read ${t0}..${t1}s)"
dmesg | grep -i -E 'blkfront|xvdb|vbd' | tail -5
for d in /sys/bus/xen/drivers/vbd/vbd-*; do
    [ -e "$d" ] && echo "$(basename $d)" > /sys/bus/xen/drivers/vbd/unbind
done
echo "=== GUEST(blk) blkfront unbound"
