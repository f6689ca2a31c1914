#!/usr/bin/env bash
# The README's "run" command.
#
# The P2P network, the node and JSON-RPC do not exist yet (they are the next issues), so
# this cannot start validators yet. It says so, and runs what exists end to end instead:
# builds the `quarry` tool, makes a throwaway home with one SM2 and one secp256k1 key,
# signs and verifies with both, hashes with SM3 and prints the mining schedule.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "NOTE: Quarry's network layer (P2P, consensus driver, node, JSON-RPC) is not built yet."
echo "      'make devnet' will start 4 validators and a read-only node once it is."
echo "      For now it demonstrates the parts that exist: keys, signatures, SM3, the schedule."
echo

swift build --product quarry
Q=.build/debug/quarry
HOME_DIR=$(mktemp -d /tmp/quarry-demo.XXXXXX)
trap 'rm -rf "$HOME_DIR"' EXIT

echo "==> keys in a throwaway home: $HOME_DIR"
$Q keys new validator-0 --home "$HOME_DIR" --insecure-plaintext
echo
QUARRY_PASSPHRASE=demo-passphrase $Q keys new app-client --scheme secp256k1 --home "$HOME_DIR"
echo
$Q keys list --home "$HOME_DIR"
echo

MSG=$(printf 'quarry demo' | od -An -tx1 | tr -d ' \n')
echo "==> SM2 signature over '$MSG' (hex of 'quarry demo')"
SIG=$($Q keys sign validator-0 --home "$HOME_DIR" --message-hex "$MSG")
PUB=$($Q keys show validator-0 --home "$HOME_DIR" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["publicKey"])')
echo "signature: $SIG"
$Q keys verify --scheme sm2 --public-key "$PUB" --message-hex "$MSG" --signature "$SIG"
echo

echo "==> SM3"
$Q crypto sm3 --text abc
echo

if $Q --help | grep -q "^  schedule"; then
    echo "==> mileage schedule"
    for n in 0 209999 210000 6929999; do $Q schedule --batch "$n"; done
fi
