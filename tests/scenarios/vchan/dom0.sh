#!/bin/sh
# dom0 side of the vchan scenario (runs as /scenario.sh after dom0 setup).
# Domain ids: 1 = vchan-srv (vchan server, 4 runs), 2 = vchan-cli (vchan
# client, 1 run). libxenvchan is driven through vchan-socket-proxy with
# `-` (stdin/stdout). Every result line starts with `=== DOM0: vchan`.
#
# BYTES and BIG must match the SEND/RECV sizes in ../vchan.toml (BIG for
# the interoperability runs: vchan-srv runs 0 and 1, vchan-cli run 0;
# BYTES for the benchmark runs 2 and 3).
BYTES=$((4 * 1024 * 1024))
BIG=$((64 * 1024 * 1024))
PROXY=vchan-socket-proxy
TX=/tmp/vchan-tx
TXBIG=/tmp/vchan-txbig
# Upper bound for one session, in seconds. A 64 MiB each-way run through
# the 1/2 KiB in-page rings is latency bound: 55 s on a quiet host, but
# over 150 s (and killed) in a CI run while other builds shared the two
# host cores (2026-11-22 13:15), so the bound leaves a wide margin.
LIMIT_S=420

now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
md5() { md5sum < "$1" | cut -d' ' -f1; }

# feed FILE STOP: FILE, then keep the pipe open until STOP exists.
# (vchan-socket-proxy ends its data loop at EOF on stdin, which would drop
# what is still on its way in the other direction.)
feed() {
    cat "$1"
    while [ ! -e "$2" ]; do sleep 0.1; done
}

# vrun NAME MODE DOMID PATH INPUT INPUT_MD5: one vchan-socket-proxy
# session; prints what dom0 sent and received (bytes, md5) and the
# session's wall time.
vrun() {
    name=$1 mode=$2 dom=$3 path=$4 input=$5 input_md5=$6
    stop=/tmp/stop.$name rx=/tmp/rx.$name in=/tmp/in.$name
    rm -f "$stop" "$rx" "$in"
    mkfifo "$in"
    t0=$(now_ms)
    # Separate jobs, not a pipeline: `wait PID` waits for PID's whole job.
    feed "$input" "$stop" > "$in" &
    $PROXY -m "$mode" "$dom" "$path" - < "$in" > "$rx" &
    pid=$!
    # Watchdog: a session that hangs (peer error) must not stall the rest.
    (sleep $LIMIT_S; kill $pid 2>/dev/null) &
    wd=$!
    wait $pid
    rc=$?
    t1=$(now_ms)
    kill $wd 2>/dev/null
    touch "$stop"
    wait
    echo "=== DOM0: vchan run=$name mode=$mode dom=$dom port=${path##*/} rc=$rc tx_bytes=$(wc -c < "$input") tx_md5=$input_md5 rx_bytes=$(wc -c < "$rx") rx_md5=$(md5 "$rx") ms=$((t1 - t0))"
    rm -f "$rx" "$stop" "$in"
}

t0=$(now_ms)
head -c $BYTES /dev/urandom > $TX
head -c $BIG /dev/urandom > $TXBIG
TX_MD5=$(md5 $TX)
BIG_MD5=$(md5 $TXBIG)
echo "=== DOM0: vchan tx bytes=$BYTES md5=$TX_MD5 big=$BIG big_md5=$BIG_MD5 gen_ms=$(($(now_ms) - t0))"

# Our domain 1 is the server (dom0 = libxenvchan client), ports 0..3.
vrun srv-inpage client 1 /local/domain/1/data/vchan/0/0 $TXBIG $BIG_MD5
vrun srv-multipage client 1 /local/domain/1/data/vchan/0/1 $TXBIG $BIG_MD5
vrun bench-dom-inpage client 1 /local/domain/1/data/vchan/0/2 $TX $TX_MD5
vrun bench-dom-multipage client 1 /local/domain/1/data/vchan/0/3 $TX $TX_MD5

# Our domain 2 is the client (dom0 = libxenvchan server, default rings).
vrun cli server 2 /local/domain/0/data/vchan/2/0 $TXBIG $BIG_MD5
rm -f $TXBIG

# Benchmark baseline: libxenvchan to libxenvchan inside dom0 (server and
# client proxy both in domain 0, the client sends BYTES, the server's
# output is cut at BYTES).
lpath=/local/domain/0/data/vchan/0/loop
rm -f /tmp/stop.loop /tmp/rx.loop /tmp/hold.loop /tmp/out.loop /tmp/in.loop
mkfifo /tmp/hold.loop /tmp/out.loop
head -c $BYTES < /tmp/out.loop > /tmp/rx.loop &
hpid=$!
t0=$(now_ms)
# stdin: a FIFO opened read-write, which never delivers data nor EOF.
$PROXY -m server 0 $lpath - 0<>/tmp/hold.loop > /tmp/out.loop &
spid=$!
mkfifo /tmp/in.loop
feed $TX /tmp/stop.loop > /tmp/in.loop &
$PROXY -m client 0 $lpath - < /tmp/in.loop > /dev/null &
cpid=$!
(sleep $LIMIT_S; kill $hpid 2>/dev/null) &
wd=$!
wait $hpid
t1=$(now_ms)
kill $wd $spid $cpid 2>/dev/null
touch /tmp/stop.loop
wait
echo "=== DOM0: vchan run=loopback mode=both dom=0 port=loop rc=0 tx_bytes=$BYTES tx_md5=$TX_MD5 rx_bytes=$(wc -c < /tmp/rx.loop) rx_md5=$(md5 /tmp/rx.loop) ms=$((t1 - t0))"
rm -f /tmp/rx.loop /tmp/hold.loop /tmp/out.loop /tmp/stop.loop /tmp/in.loop

xl list
echo "=== DOM0 SCENARIO DONE"
