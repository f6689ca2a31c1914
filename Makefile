# Quarry: the two set-up commands are `make devnet` (run a local network) and
# `make test` (run every test). Both install what they need first.
SWIFT ?= swift

.PHONY: deps build release test test-network devnet bench clean

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

clean:
	rm -rf .build
