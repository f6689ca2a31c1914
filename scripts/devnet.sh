#!/usr/bin/env bash
# The README's "run" command: starts networks/local-4 (4 validators and 1 read-only node
# on 127.0.0.1, each its own process with its own data directory), shows live progress,
# and on Ctrl-C stops every node cleanly and prints a summary. Data stays on disk under
# networks/local-4/nodeN/data; logs in networks/local-4/nodeN.log.
#
# Not yet here (they need the tx/query CLI and JSON-RPC wiring): the demo workload of
# vehicles, claims, batch drops, blind boxes and redemptions. Blocks are empty for now.
set -euo pipefail
cd "$(dirname "$0")/.."

NET=${QUARRY_NETWORK:-networks/local-4}
swift build --product quarry
Q=$PWD/.build/debug/quarry

if [ ! -f "$NET/genesis.json" ]; then
    echo "==> generating $NET"
    "$Q" testnet --output "$NET" --validators 4 --read-only 1 --base-port 26600 --chain-id quarry-local-4
fi

# Node homes are the directories nodeN/ (nodeN.log beside them are their logs).
nodes=$(for d in "$NET"/node*/; do echo "${d%/}"; done | sort)
pids=()
stop() {
    echo
    echo "==> stopping nodes"
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    echo "==> summary"
    for n in $nodes; do
        last=$(grep -E "msg=(committed|synced) height=" "$n.log" | tail -n 1 || true)
        echo "  $(basename "$n"): ${last:-no blocks}"
    done
    echo "data and logs are kept under $NET"
    exit 0
}
trap stop INT TERM

echo "==> starting $(echo "$nodes" | wc -l) nodes (logs: $NET/nodeN.log); Ctrl-C stops them"
for n in $nodes; do
    "$Q" node start --home "$n" >> "$n.log" 2>&1 &
    pids+=($!)
done

while true; do
    sleep 2
    line=""
    for n in $nodes; do
        h=$(grep -oE "msg=(committed|synced) height=[0-9]+" "$n.log" | tail -n 1 | grep -oE "[0-9]+$" || echo 0)
        line="$line $(basename "$n")=$h"
    done
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    echo "$(date +%T) heights:$line  (nodes running: $alive)"
done
