#!/bin/sh
# dom0 side of the blkdisk scenario: wait until the storage domain (domain
# 1) has shut down, then report its state (s = shutdown, c = crashed).
i=0
while [ $i -lt 120 ]; do
    line=$(xl list | awk '$2 == "1" { print }')
    state=$(echo "$line" | awk '{ print $5 }')
    case "$state" in
        *s*|*c*) break ;;
    esac
    i=$((i + 1))
    sleep 1
done
echo "=== DOM0: domain 1 state '$state'"
echo "=== DOM0 SCENARIO DONE"
