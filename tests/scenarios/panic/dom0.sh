#!/bin/sh
# dom0 side of the panic scenario: wait until domain 1 is shut down and
# print its state as xl reports it (flags column: s = shutdown, c = crashed).
i=0
while [ $i -lt 60 ]; do
    line=$(xl list | awk '$2 == "1" { print }')
    state=$(echo "$line" | awk '{ print $5 }')
    case "$state" in
        *s*|*c*) break ;;
    esac
    i=$((i + 1))
    sleep 1
done
echo "=== DOM0: domain 1 state '$state'"
xl list
echo "=== DOM0 SCENARIO DONE"
