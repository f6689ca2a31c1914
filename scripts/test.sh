#!/usr/bin/env bash
# Runs the whole test suite: builds, then `swift test` (Swift Testing and XCTest).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build
