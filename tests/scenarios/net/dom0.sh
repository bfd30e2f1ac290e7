#!/bin/sh
# dom0 side of the net scenario (see ../net.toml): attaches one vif to each
# guest with the net domain as backend, reports the xenbus states once both
# ends are Connected, then drives guest-b's detach/attach cycles (each
# started by the guest unbinding xen-netfront, frontend Closing/Closed),
# and finally detaches both vifs once the guests unbound them. While the
# guests' transfers run, it attaches two vifs to the hostile domain and
# detaches them once it has closed both.
S=1; A=2; B=3; H=4
CYCLES=10
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "=== DOM0: net $* at $(up)"; }
fe() { echo /local/domain/$1/device/vif/0; }
be() { echo /local/domain/$S/backend/vif/$1/0; }

i=0
while [ $i -lt 120 ]; do
    ok=1
    for d in $S $A $B $H; do xenstore-read /local/domain/$d/name >/dev/null 2>&1 || ok=0; done
    [ $ok = 1 ] && break
    sleep 1; i=$((i + 1))
done
xl list

# attach DOM [OPTION]: one vif, MAC 00:16:3e:00:00:0<DOM>, plus an xl
# vif option (e.g. rate=...).
attach() {
    for try in 1 2 3; do
        if xl network-attach $1 backend=$S mac=00:16:3e:00:00:0$1 script=/bin/true $2; then
            say "attach dom$1 ok (try $try)"
            return 0
        fi
        say "attach dom$1 try $try failed; backend: $(xenstore-ls -f $(be $1) 2>&1 | tr '\n' ' ' | head -c 400)"
        xl network-detach $1 0 >/dev/null 2>&1
        xenstore-rm $(be $1) >/dev/null 2>&1
        xenstore-rm $(fe $1) >/dev/null 2>&1
        xenstore-rm /libxl/$1/device/vif/0 >/dev/null 2>&1
        sleep 3
    done
    say "attach dom$1 FAILED"
    return 1
}

# connected DOM SECONDS: until backend and frontend are both Connected.
connected() {
    n=0
    while [ $n -lt $2 ]; do
        b=$(xenstore-read $(be $1)/state 2>/dev/null)
        f=$(xenstore-read $(fe $1)/state 2>/dev/null)
        if [ "$b" = 4 ] && [ "$f" = 4 ]; then
            say "vif dom$1 states backend=$b frontend=$f"
            return 0
        fi
        sleep 1; n=$((n + 1))
    done
    say "vif dom$1 states backend=$b frontend=$f (not connected)"
    return 1
}

# wait_closed DOM SECONDS: until the frontend is Closing/Closed/gone.
wait_closed() {
    n=0
    while [ $n -lt $2 ]; do
        st=$(xenstore-read $(fe $1)/state 2>/dev/null)
        case "$st" in 5|6|"") return 0 ;; esac
        sleep 1; n=$((n + 1))
    done
    return 1
}

detach() {
    xl network-detach $1 0 >/dev/null 2>&1
    say "detach dom$1 rc=$? backend dir left: '$(xenstore-ls $(be $1) 2>/dev/null | head -1)'"
}

attach $A
attach $B
connected $A 120
connected $B 120
for d in $A $B; do
    feat=""
    for k in feature-sg feature-gso-tcpv4 feature-gso-tcpv6 multi-queue-num-queues; do
        feat="$feat $k=$(xenstore-read $(fe $d)/$k 2>/dev/null)"
    done
    say "vif dom$d frontend$feat"
done

# The hostile domain's vifs DEVID (0 and 1), MAC 00:16:3e:00:00:4<DEVID>.
hfe() { echo /local/domain/$H/device/vif/$1; }
hbe() { echo /local/domain/$S/backend/vif/$H/$1; }
hattach() {
    for try in 1 2 3; do
        if xl network-attach $H backend=$S mac=00:16:3e:00:00:4$1 script=/bin/true; then
            say "hostile attach vif $1 ok (try $try)"
            return 0
        fi
        say "hostile attach vif $1 try $try failed"
        xl network-detach $H $1 >/dev/null 2>&1
        xenstore-rm $(hbe $1) >/dev/null 2>&1
        xenstore-rm $(hfe $1) >/dev/null 2>&1
        xenstore-rm /libxl/$H/device/vif/$1 >/dev/null 2>&1
        sleep 3
    done
    say "hostile attach vif $1 FAILED"
    return 1
}

# The guests start their 64 MiB transfers about 35 s after both vifs
# connect (loopback baseline and 100 pings first); the hostile domain
# joins while they run. It closes both vifs itself when done (frontend
# Closed), then dom0 detaches them.
sleep 50
hattach 0 && hattach 1
# vif 1 closes last (vif 0 passes through Closed between its cases).
for v in 1 0; do
    n=0
    while [ $n -lt 240 ]; do
        st=$(xenstore-read $(hfe $v)/state 2>/dev/null)
        case "$st" in 6|"") break ;; esac
        sleep 1; n=$((n + 1))
    done
    say "hostile vif $v frontend state '$st' backend state '$(xenstore-read $(hbe $v)/state 2>/dev/null)'"
done
for v in 0 1; do
    xl network-detach $H $v >/dev/null 2>&1
    say "hostile detach vif $v rc=$? backend dir left: '$(xenstore-ls $(hbe $v) 2>/dev/null | head -1)'"
done

# guest-b: CYCLES detach/attach rounds, each started by the guest unbinding.
c=0
while [ $c -lt $CYCLES ]; do
    if ! wait_closed $B 600; then
        say "cycle $c: guest-b never closed its vif"
        break
    fi
    detach $B
    c=$((c + 1))
    # The last connection is rate limited: 1 Mbit/s in 20 ms windows
    # (libxl writes rate = "2500,20000"); guest-b times a transfer on it.
    extra=
    [ $c = $CYCLES ] && extra=rate=1Mb/s@20ms
    attach $B $extra || break
    connected $B 60 >/dev/null
    say "cycle $c attached"
done
say "cycles done: $c of $CYCLES"

wait_closed $B 300 || say "guest-b vif still open"
wait_closed $A 120 || say "guest-a vif still open"
detach $A
detach $B
# CPU time of each domain over the run (the Time(s) column).
xl list | sed 's/^/=== DOM0: xl list: /'
echo "=== DOM0 SCENARIO DONE"
