#!/usr/bin/env bash
# Runs the multi-process network test (Tests/QuarryCLITests/NetworkProcessTests.swift) on
# its own, after a build: 5 `quarry node start` processes on 127.0.0.1, one SIGKILLed and
# restarted, one paused with SIGSTOP, then every node's block store compared.
#
# It takes 20-35 s. Every wait in the test has a deadline and the test stops every
# process it started. Two outer guards cover a test process that hangs or dies: `timeout`
# (SIGTERM, then SIGKILL 30 s later), and the node PIDs the test writes to
# QUARRY_TEST_PID_FILE, any of which still running afterwards is killed here (Foundation
# starts each node in its own process group, so killing the test does not reach them).
# See docs/network-test.md.
set -euo pipefail
cd "$(dirname "$0")/.."
pid_file=$(mktemp "${TMPDIR:-/tmp}/quarry-network-test-pids.XXXXXX")
cleanup() {
    while read -r pid; do
        # Only a process that is still one of this run's nodes (PIDs can be reused).
        if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "quarry node start"; then
            echo "test-network: killing leftover node process $pid" >&2
            kill -CONT "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done < "$pid_file"
    rm -f "$pid_file"
}
trap cleanup EXIT
QUARRY_TEST_PID_FILE=$pid_file timeout --kill-after=30 "${QUARRY_NETWORK_TEST_TIMEOUT:-600}" \
    swift test --skip-build --filter NetworkProcessTests
