#!/bin/sh
# dom0 side of the hello scenario (runs as /scenario.sh after dom0 setup).
# Domain ids: 1 = hello-a (server), 2 = hello-b (client).

# wait_key PATH SECONDS: poll until xenstore-read PATH succeeds.
wait_key() {
    i=0
    while ! xenstore-read "$1" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge "$2" ]; then
            echo "=== DOM0: timeout waiting for $1"
            return 1
        fi
        sleep 1
    done
}

for d in 1 2; do
    if wait_key /local/domain/$d/data/hello/watching 120; then
        xenstore-write /local/domain/$d/data/hello/poke poke-from-dom0
        echo "=== DOM0: poked $d"
    fi
done

if wait_key /local/domain/2/data/hello/result 200; then
    echo "=== DOM0: result $(xenstore-read /local/domain/2/data/hello/result)"
fi
xl list
echo "=== DOM0 SCENARIO DONE"
