#!/usr/bin/env bash
# The README's "run" command (`make devnet`, which installs the dependencies first): builds
# quarry and runs `quarry devnet`, which generates networks/local-4 if needed (4 validators
# and 1 read-only node on 127.0.0.1, each its own process with its own data directory),
# starts every node, runs the demo workload through JSON-RPC with live progress, and on
# Ctrl-C stops every node cleanly and prints a summary. Data stays on disk under
# networks/local-4/nodeN/data; logs in networks/local-4/nodeN.log.
#
# Extra arguments go to `quarry devnet`, for example:
#   bash scripts/devnet.sh --vehicles 20 --duration 120
#   bash scripts/devnet.sh --no-workload        # only the nodes, to query what is there
# QUARRY_NETWORK=DIR picks another network directory.
set -euo pipefail
cd "$(dirname "$0")/.."

NET=${QUARRY_NETWORK:-networks/local-4}
swift build --product quarry
exec "$PWD/.build/debug/quarry" devnet --network "$NET" "$@"
