#!/usr/bin/env bash
# Runs the whole test suite: builds once, then runs `swift test` (Swift Testing and
# XCTest) in three groups. The socket-level server tests (JSON-RPC and P2P) run on their
# own: Swift Testing runs tests in parallel on a cooperative pool as wide as the machine
# (2 threads here), and CPU-bound simulation tests or tests that wait on child processes
# beside them can delay a server's request handling past the clients' read timeouts. The
# multi-process network test runs last and alone (scripts/test-network.sh): its five node
# processes share the machine's cores with nothing else from this suite.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
echo "==> unit, property, simulation, storage and CLI tests"
swift test --skip-build --skip 'QuarryRPCTests|QuarryNetworkTests|NodeRuntimeTests|NetworkProcessTests'
echo "==> socket-level tests (JSON-RPC, P2P, nodes over loopback)"
swift test --skip-build --filter 'QuarryRPCTests|QuarryNetworkTests|NodeRuntimeTests'
echo "==> multi-process network (5 'quarry node start' processes: SIGKILL, restart, SIGSTOP, block stores compared)"
bash scripts/test-network.sh
