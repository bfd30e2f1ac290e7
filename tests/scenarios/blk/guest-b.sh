#!/bin/sh
# guest-b of the blk scenario (see ../blk.toml). Boot 1: isolation marker
# and a flushed persistence pattern, then 10 detach/attach cycles (dom0
# detaches after each unbind and attaches again); boot 2: persistence and
# isolation checks. Results: `=== GUEST(b) <WHAT> RESULT OK|FAIL ...`.
BOOT=$(sed -n 's/.*boot=\([0-9]*\).*/\1/p' /proc/cmdline)
MARK="XENRT-ISOLATION-MARK guest"
CYCLES=10
say() { echo "=== GUEST(b) $*"; }
verdict() { if [ "$1" = 1 ]; then echo OK; else echo FAIL; fi; }
wait_dev() {
    i=0
    while [ ! -b /dev/$1 ] && [ $i -lt $2 ]; do sleep 1; i=$((i + 1)); done
    [ -b /dev/$1 ]
}
unbind() { echo vbd-51728 > /sys/bus/xen/drivers/vbd/unbind 2>/dev/null; }
md5() { md5sum | cut -d' ' -f1; }

if ! wait_dev xvdb 240; then say "DEVICES RESULT FAIL no xvdb"; exit 1; fi
say "xvdb $(cat /sys/block/xvdb/size) sectors ro=$(cat /sys/block/xvdb/ro)"

if [ "$BOOT" = 2 ]; then
    want=$(dd if=/dev/xvdb bs=512 count=1 2>/dev/null | tr -d '\000' | sed -n 's/^PATTERN-MD5 //p')
    got=$(dd if=/dev/xvdb bs=1M skip=2 count=8 iflag=direct 2>/dev/null | md5)
    ok=0; [ -n "$want" ] && [ "$want" = "$got" ] && ok=1
    say "PERSIST RESULT $(verdict $ok) pattern_want=$want pattern_got=$got"
    own=$(tr -d '\000' < /dev/xvdb | grep -c "$MARK=b")
    other=$(tr -d '\000' < /dev/xvdb | grep -c "$MARK=a")
    ok=0; [ "$own" -ge 1 ] && [ "$other" = 0 ] && ok=1
    say "ISOLATION RESULT $(verdict $ok) own_marks=$own other_marks=$other"
    unbind
    exit 0
fi

# Marker at 1 MiB, 8 MiB pattern at 2 MiB, its md5 in sector 0; fsync
# (a flush request) makes them durable.
echo "$MARK=b" > /tmp/mark
dd if=/tmp/mark of=/dev/xvdb bs=512 seek=2048 conv=sync,fsync 2>/dev/null
dd if=/dev/urandom of=/tmp/p bs=1M count=8 2>/dev/null
sum=$(md5 < /tmp/p)
dd if=/tmp/p of=/dev/xvdb bs=1M seek=2 oflag=direct conv=fsync 2>/dev/null; rc1=$?
echo "PATTERN-MD5 $sum" > /tmp/head
dd if=/tmp/head of=/dev/xvdb bs=512 count=1 conv=sync,fsync 2>/dev/null; rc2=$?
back=$(dd if=/dev/xvdb bs=1M skip=2 count=8 iflag=direct 2>/dev/null | md5)
ok=0; [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$back" = "$sum" ] && ok=1
say "PERSIST-WRITE RESULT $(verdict $ok) md5=$sum read=$back"
rm -f /tmp/p
unbind

passed=0
c=1
while [ $c -le $CYCLES ]; do
    # The old device must go away before the new one can be waited for.
    i=0
    while [ -b /dev/xvdb ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
    if ! wait_dev xvdb 120; then say "cycle $c: no xvdb"; break; fi
    dd if=/dev/urandom of=/tmp/c bs=64k count=16 2>/dev/null
    a=$(md5 < /tmp/c)
    dd if=/tmp/c of=/dev/xvdb bs=64k seek=$((256 + c * 16)) oflag=direct conv=fsync 2>/dev/null
    b=$(dd if=/dev/xvdb bs=64k skip=$((256 + c * 16)) count=16 iflag=direct 2>/dev/null | md5)
    if [ "$a" = "$b" ]; then passed=$((passed + 1)); r=OK; else r=FAIL; fi
    say "cycle $c $r"
    unbind
    c=$((c + 1))
done
ok=0; [ $passed = $CYCLES ] && ok=1
say "CYCLES RESULT $(verdict $ok) $passed/$CYCLES"
