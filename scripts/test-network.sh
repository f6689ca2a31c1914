#!/usr/bin/env bash
# Runs the multi-process network test (Tests/QuarryCLITests/NetworkProcessTests.swift) on
# its own, after a build: 5 `quarry node start` processes on 127.0.0.1, one SIGKILLed and
# restarted, one paused with SIGSTOP, then every node's block store compared.
#
# It takes about 15-20 s. Every wait in the test has a deadline and the test stops every
# process it started; `timeout` is the outer bound in case the test process itself hangs
# (it sends SIGTERM, then SIGKILL 30 s later). See docs/network-test.md.
set -euo pipefail
cd "$(dirname "$0")/.."
timeout --kill-after=30 "${QUARRY_NETWORK_TEST_TIMEOUT:-600}" \
    swift test --skip-build --filter NetworkProcessTests
