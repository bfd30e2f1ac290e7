#!/bin/sh
# guest-a of the blk scenario (see ../blk.toml). Boot 1: O_DIRECT pattern,
# filesystem, discard, read-only checks; boot 2: persistence and isolation.
# Each result is one `=== GUEST(a) <WHAT> RESULT OK|FAIL ...` line.
BOOT=$(sed -n 's/.*boot=\([0-9]*\).*/\1/p' /proc/cmdline)
MARK="XENRT-ISOLATION-MARK guest"
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "=== GUEST(a) $*"; }
verdict() { if [ "$1" = 1 ]; then echo OK; else echo FAIL; fi; }
wait_dev() {
    i=0
    while [ ! -b /dev/$1 ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
    [ -b /dev/$1 ]
}
unbind() {
    echo vbd-$1 > /sys/bus/xen/drivers/vbd/unbind 2>/dev/null
    say "unbound vbd-$1"
}
md5() { md5sum | cut -d' ' -f1; }

if ! wait_dev xvdb; then say "DEVICES RESULT FAIL no xvdb"; exit 1; fi
say "xvdb $(cat /sys/block/xvdb/size) sectors ro=$(cat /sys/block/xvdb/ro) max_hw_sectors_kb=$(cat /sys/block/xvdb/queue/max_hw_sectors_kb) max_segments=$(cat /sys/block/xvdb/queue/max_segments) discard_max_bytes=$(cat /sys/block/xvdb/queue/discard_max_bytes)"

if [ "$BOOT" = 2 ]; then
    ok=1
    mkdir -p /mnt
    mount -t ext4 /dev/xvdb /mnt || ok=0
    (cd /mnt && md5sum -c sums) > /tmp/check 2>&1 || ok=0
    files=$(grep -c ': OK$' /tmp/check)
    want=$(cat /mnt/pattern.md5 2>/dev/null)
    umount /mnt
    got=$(dd if=/dev/xvdb bs=1M skip=16 count=56 iflag=direct 2>/dev/null | md5)
    [ -n "$want" ] && [ "$want" = "$got" ] || ok=0
    say "PERSIST RESULT $(verdict $ok) files_ok=$files pattern_want=$want pattern_got=$got"
    own=$(tr -d '\000' < /dev/xvdb | grep -c "$MARK=a")
    other=$(tr -d '\000' < /dev/xvdb | grep -c "$MARK=b")
    ok=0; [ "$own" -ge 1 ] && [ "$other" = 0 ] && ok=1
    say "ISOLATION RESULT $(verdict $ok) own_marks=$own other_marks=$other"
    unbind 51728
    exit 0
fi

if ! wait_dev xvdc; then say "DEVICES RESULT FAIL no xvdc"; fi
say "xvdc $(cat /sys/block/xvdc/size) sectors ro=$(cat /sys/block/xvdc/ro)"

# 1. 64 MiB O_DIRECT pattern at offset 16 MiB (1 MiB writes: blkfront sends
#    them as indirect requests).
dd if=/dev/urandom of=/tmp/pat bs=1M count=64 2>/dev/null
want=$(md5 < /tmp/pat)
prefix=$(head -c $((56 << 20)) /tmp/pat | md5)
t0=$(up)
dd if=/tmp/pat of=/dev/xvdb bs=1M seek=16 oflag=direct conv=fsync 2>/tmp/dd.err
wrc=$?
t1=$(up)
rm -f /tmp/pat
got=$(dd if=/dev/xvdb bs=1M skip=16 count=64 iflag=direct 2>/dev/null | md5)
t2=$(up)
ok=0; [ $wrc = 0 ] && [ "$want" = "$got" ] && ok=1
say "odirect md5 written=$want read=$got"
say "ODIRECT RESULT $(verdict $ok) bytes=67108864 write_s=$t0..$t1 read_s=$t1..$t2 rc=$wrc"

# 2. Filesystem on the first 16 MiB: mkfs, mount, write, sync, umount,
#    remount, verify.
ok=1
mke2fs -q -F /dev/xvdb 16384 || ok=0
mkdir -p /mnt
mount -t ext4 /dev/xvdb /mnt || ok=0
for n in 1 2 3 4; do
    dd if=/dev/urandom of=/mnt/file$n bs=1k count=$((n * 700)) 2>/dev/null || ok=0
done
echo "$MARK=a" > /mnt/mark
(cd /mnt && md5sum file1 file2 file3 file4 mark > sums)
echo "$prefix" > /mnt/pattern.md5
sync
umount /mnt || ok=0
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/xvdb /mnt || ok=0
(cd /mnt && md5sum -c sums) > /tmp/check 2>&1 || ok=0
files=$(grep -c ': OK$' /tmp/check)
sync
umount /mnt || ok=0
blockdev --flushbufs /dev/xvdb
say "FS RESULT $(verdict $ok) files_ok=$files $(tr '\n' ' ' < /tmp/check)"

# 3. Discard the last 4 MiB of the pattern area; the range reads as zeros.
blkdiscard -o $((76 << 20)) -l $((4 << 20)) /dev/xvdb
drc=$?
zeros=$(dd if=/dev/zero bs=1M count=4 2>/dev/null | md5)
after=$(dd if=/dev/xvdb bs=1M skip=76 count=4 iflag=direct 2>/dev/null | md5)
ok=0; [ $drc = 0 ] && ok=1
say "DISCARD RESULT $(verdict $ok) rc=$drc reads_zero=$([ "$after" = "$zeros" ] && echo yes || echo no)"

# 4. Read-only vbd: blkfront marks the disk read-only (the backend's
#    `info`), reads work, writes are refused. (Linux refuses them itself;
#    the backend's own refusal is checked by the hostile frontend.)
ok=1
if [ -b /dev/xvdc ]; then
    ro=$(cat /sys/block/xvdc/ro)
    dd if=/dev/xvdc of=/dev/null bs=4096 count=16 iflag=direct 2>/dev/null; rrc=$?
    dd if=/dev/zero of=/dev/xvdc bs=4096 count=1 oflag=direct 2>/dev/null; w1=$?
    [ "$ro" = 1 ] && [ $rrc = 0 ] && [ $w1 != 0 ] || ok=0
    say "RO RESULT $(verdict $ok) ro_flag=$ro read_rc=$rrc write_rc=$w1"
    unbind 51744
else
    say "RO RESULT FAIL no xvdc"
fi
dmesg | grep -i -E 'blkfront|xvd' | tail -4
unbind 51728
