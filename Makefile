# Quarry: the two set-up commands are `make devnet` (run a local network) and
# `make test` (run every test). Both install what they need first.
SWIFT ?= swift

.PHONY: deps build release test test-network devnet bench bench-load clean

deps:
	@bash scripts/ensure-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: deps
	bash scripts/test.sh

test-network: deps
	swift build --build-tests
	bash scripts/test-network.sh
	swift test --skip-build --filter 'ClientNetworkTests|PayoutRulesNetworkTests|DocsClientNetworkTests'

devnet: deps
	bash scripts/devnet.sh

bench: deps
	$(SWIFT) build -c release --product quarry-bench
	.build/release/quarry-bench all

# The network load benchmark: 5 release `quarry node start` processes on a copy of
# networks/local-4 (ports 29600+), SM2 claims and secp256k1 transfers at increasing rates,
# with each SM2 engine in turn (docs/performance.md, "Network load"). About 15 minutes.
bench-load: deps
	$(SWIFT) build -c release --product quarry
	$(SWIFT) build -c release --product quarry-bench
	.build/release/quarry-bench load

clean:
	rm -rf .build
