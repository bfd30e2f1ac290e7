#!/bin/sh
# The guest of the console scenario (see ../console.toml). Each round:
# wait for the secondary console's hvc tty, write 20 lines to it, read the
# echoes back and compare, close it, tell dom0 (data/console-round), and
# wait for the tty to go away (dom0 detaches, then attaches again).
# Results are `=== GUEST(c) ...` lines (short: Xen cuts console lines at
# 126 characters).
ROUNDS=3
ALPHA="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+.,:;"
TAB=$(printf '\t'); BEL=$(printf '\a')
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "=== GUEST(c) $*"; }

# hvc ttys that open (an hvc index without a console behind it does not).
hvcs() {
    for n in 0 1 2 3 4 5 6 7; do
        [ -e /dev/hvc$n ] && ( exec 3<>/dev/hvc$n ) 2>/dev/null && echo hvc$n
    done
}
BASE=" $(hvcs | tr '\n' ' ')"
say "hvc ttys before the console: [$BASE ]"
xenstore-write data/console-ready 1 || say "xenstore-write data/console-ready failed"

# new_tty SECONDS: the first openable hvc tty not in BASE.
new_tty() {
    n=0
    while [ $n -lt $1 ]; do
        for t in $(hvcs); do
            case "$BASE " in *" $t "*) ;; *) echo $t; return 0 ;; esac
        done
        sleep 1; n=$((n + 1))
    done
    return 1
}

# lines R: the 20 lines of round R; expect R: the echoes console-domain
# sends back (the 150-character line comes back in two pieces of 80 and
# 70, the tab as a space and the bell as a dot).
lines() {
    k=1
    while [ $k -le 18 ]; do
        printf 'r%s-%02d %s\n' $1 $k "$(echo $ALPHA | cut -c1-$((3 * k + 10)))"
        k=$((k + 1))
    done
    long="r$1-19 $(printf '%0144d' 0 | tr 0 x)"
    echo "$long"
    echo "r$1-20 tab${TAB}bell${BEL}end"
}
expect() {
    lines $1 | head -18 | sed 's/^/echo: /'
    long="r$1-19 $(printf '%0144d' 0 | tr 0 x)"
    echo "echo: $(echo "$long" | cut -c1-80)"
    echo "echo: $(echo "$long" | cut -c81-)"
    echo "echo: r$1-20 tab bell.end"
}

passed=0
r=1
while [ $r -le $ROUNDS ]; do
    if ! TTY=$(new_tty 120); then
        say "ROUND $r RESULT FAIL no new hvc tty"
        break
    fi
    exec 3<>/dev/$TTY
    stty raw -echo <&3
    t0=$(up)
    lines $r >&3
    expect $r > /tmp/expect
    want=$(wc -l < /tmp/expect)
    : > /tmp/got
    k=0
    while [ $k -lt $want ] && IFS= read -r -t 20 line <&3; do
        echo "$line" >> /tmp/got
        k=$((k + 1))
    done
    t1=$(up)
    exec 3<&-
    if cmp -s /tmp/expect /tmp/got; then ok=OK; passed=$((passed + 1)); else ok=FAIL; fi
    say "ROUND $r RESULT $ok tty=$TTY echoes=$k/$want md5=$(md5sum < /tmp/got | cut -c1-12) secs=$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
    [ $ok = OK ] || diff /tmp/expect /tmp/got | head -6 | cut -c1-100
    xenstore-write data/console-round $r
    # dom0 detaches the console now: wait until its tty is gone.
    n=0
    while [ $n -lt 60 ] && ( exec 3<>/dev/$TTY ) 2>/dev/null; do sleep 1; n=$((n + 1)); done
    r=$((r + 1))
done
say "ROUNDS RESULT $([ $passed = $ROUNDS ] && echo OK || echo FAIL) $passed/$ROUNDS"
