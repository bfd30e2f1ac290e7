#!/bin/sh
# A guest of the net scenario (see ../net.toml); `role=a` is 10.0.0.2,
# `role=b` 10.0.0.3. a pings b 100 times; then 64 MiB go a -> b (port
# 5001) and b -> a (port 5002) over TCP with busybox nc, each end printing
# the md5 of what it sent or received. Then b goes through 10 unbind /
# detach / attach cycles (dom0 detaches after each unbind and attaches
# again) with a ping after each, and tells a it is done (port 5003).
# Before each unbind a guest prints its eth0 counters. Each result is one
# `=== GUEST(x) <WHAT> RESULT OK|FAIL ...` line (short: Xen cuts console
# lines at 126 characters).
ROLE=$(sed -n 's/.*role=\([a-z]*\).*/\1/p' /proc/cmdline)
if [ "$ROLE" = a ]; then ME=10.0.0.2; PEER=10.0.0.3; else ME=10.0.0.3; PEER=10.0.0.2; fi
# The net domain's management host (its boot argument mgmt=).
MGMT=10.0.0.1
MB=64
CYCLES=10
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "=== GUEST($ROLE) $*"; }
verdict() { if [ "$1" = 1 ]; then echo OK; else echo FAIL; fi; }
md5() { md5sum | cut -d' ' -f1; }
secs() { echo "$1 $2" | awk '{ printf "%.2f", $2 - $1 }'; }

# IPv4 only: no router solicitations or DAD traffic in the counters.
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6

# link SECONDS: waits for eth0, configures it and waits for the carrier.
link() {
    i=0
    while [ ! -e /sys/class/net/eth0 ] && [ $i -lt $1 ]; do sleep 1; i=$((i + 1)); done
    [ -e /sys/class/net/eth0 ] || return 1
    echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6 2>/dev/null
    ip link set eth0 up
    ip addr add $ME/24 dev eth0
    i=0
    while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 30 ]; do
        sleep 1; i=$((i + 1))
    done
    [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ]
}

# counters_unbind: eth0's counters (pkts/bytes/errs/drop each way, as
# /proc/net/dev has them), then unbind xen-netfront. The net domain prints
# its own counters for the vif when it closes.
counters_unbind() {
    set -- $(sed -n 's/^ *eth0: *//p' /proc/net/dev)
    say "COUNTERS rx=$2/$1/$3/$4 tx=${10}/$9/${11}/${12}"
    echo vif-0 > /sys/bus/xen/drivers/vif/unbind
}

if link 240; then ok=1; else ok=0; fi
say "LINK RESULT $(verdict $ok) $ME mac=$(cat /sys/class/net/eth0/address 2>/dev/null) queues=$(ls /sys/class/net/eth0/queues 2>/dev/null | grep -c tx)"
[ $ok = 1 ] || exit 1

# Wait until the peer answers (it may come up later).
i=0
until ping -c 1 -W 1 $PEER >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 120 ]; then say "PEER RESULT FAIL $PEER silent"; break; fi
done
say "peer $PEER answers after $i tries at $(up)"

dd if=/dev/urandom of=/tmp/tx bs=1M count=$MB 2>/dev/null
SUM=$(md5 < /tmp/tx)
mkfifo /tmp/idle

# send PORT: to the peer's listener (retrying until it listens).
send() {
    n=0
    while [ $n -lt 120 ]; do
        t0=$(up)
        if nc $PEER $1 < /tmp/tx 2>/dev/null; then
            t1=$(up)
            say "SEND RESULT OK port=$1 bytes=$((MB << 20)) md5=$SUM secs=$(secs $t0 $t1)"
            return 0
        fi
        sleep 1; n=$((n + 1))
    done
    say "SEND RESULT FAIL port=$1 no listener"
    return 1
}

# recv PORT: one connection; stdin is an idle fifo so nc never sees EOF
# there (it would half-close, and the sender would stop early).
recv() {
    got=$(nc -l -p $1 0<>/tmp/idle | md5)
    say "RECV RESULT OK port=$1 md5=$got at $(up)"
}

if [ "$ROLE" = a ]; then
    # Baseline for the figures: the same transfer over loopback, inside
    # this guest, without the net domain.
    ip link set lo up
    (nc -l -p 6000 0<>/tmp/idle | md5 > /tmp/lo.md5) &
    n=0
    while [ $n -lt 60 ]; do
        t0=$(up)
        nc 127.0.0.1 6000 < /tmp/tx 2>/dev/null && break
        sleep 1; n=$((n + 1))
    done
    t1=$(up)
    i=0
    while [ ! -s /tmp/lo.md5 ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
    say "LOOPBACK bytes=$((MB << 20)) secs=$(secs $t0 $t1) md5 $([ "$(cat /tmp/lo.md5)" = $SUM ] && echo ok || echo BAD)"
    ping -c 100 -i 0.2 $PEER > /tmp/ping 2>&1
    loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' /tmp/ping)
    rtt=$(sed -n 's/.*min\/avg\/max = \([0-9.\/]*\) ms.*/\1/p' /tmp/ping)
    tx=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/\1 \2/p' /tmp/ping)
    ok=0; [ "$loss" = 0 ] && ok=1
    say "PING RESULT $(verdict $ok) sent/received=$tx loss=$loss% rtt_min/avg/max=$rtt ms"
    # The net domain's management host: ping, then its counters (TCP; the
    # idle fifo keeps nc from half-closing before the answer).
    ping -c 10 -i 0.2 -W 2 $MGMT > /tmp/mping 2>&1
    loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' /tmp/mping)
    rtt=$(sed -n 's/.*min\/avg\/max = \([0-9.\/]*\) ms.*/\1/p' /tmp/mping)
    ok=0; [ "$loss" = 0 ] && ok=1
    say "MGMT PING RESULT $(verdict $ok) loss=$loss% rtt_min/avg/max=$rtt ms"
    T=; command -v timeout >/dev/null && T="timeout 10"
    $T nc $MGMT 7777 0<>/tmp/idle > /tmp/counters 2>/dev/null
    while read -r l; do say "MGMT COUNTERS $l"; done < /tmp/counters
    ok=0; grep -q '^frontends ' /tmp/counters && ok=1
    say "MGMT RESULT $(verdict $ok) lines=$(wc -l < /tmp/counters)"
    send 5001
    recv 5002
    rm -f /tmp/tx
    # b's rate-limited transfer (its last cycle), in the background.
    (got=$(nc -l -p 5004 0<>/tmp/idle | md5); say "RECV RESULT OK port=5004 md5=$got at $(up)") &
    # b's cycles; it connects when done.
    msg=$(nc -l -p 5003 0<>/tmp/idle)
    say "b reports '$msg' at $(up)"
else
    recv 5001
    send 5002
    rm -f /tmp/tx
    sleep 5
    counters_unbind
    passed=0
    c=1
    while [ $c -le $CYCLES ]; do
        # The old eth0 goes away first; dom0 then detaches and attaches.
        i=0
        while [ -e /sys/class/net/eth0 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
        if ! link 120; then say "cycle $c: no link"; break; fi
        got=$(ping -c 3 -W 5 $PEER 2>&1 | sed -n 's/.*, \([0-9]*\) packets received.*/\1/p')
        if [ "$got" = 3 ]; then passed=$((passed + 1)); r=OK; else r=FAIL; fi
        say "cycle $c $r ping 3/$got"
        if [ $c = $CYCLES ]; then
            # dom0 attached this connection with rate=1Mb/s@20ms.
            dd if=/dev/urandom of=/tmp/rl bs=1k count=512 2>/dev/null
            sum=$(md5 < /tmp/rl)
            t0=$(up)
            nc $PEER 5004 < /tmp/rl 2>/dev/null; rc=$?
            t1=$(up)
            ok=0; [ $rc = 0 ] && ok=1
            say "RATE RESULT $(verdict $ok) port=5004 bytes=524288 md5=$sum secs=$(secs $t0 $t1)"
            break
        fi
        counters_unbind
        c=$((c + 1))
    done
    ok=0; [ $passed = $CYCLES ] && ok=1
    say "CYCLES RESULT $(verdict $ok) $passed/$CYCLES"
    echo "cycles $passed/$CYCLES" | nc $PEER 5003
fi

# Quiet time, then the counters and the unbind.
sleep 5
counters_unbind
say "unbound vif-0 at $(up)"
