#!/usr/bin/env bash
# Installs what building and testing Quarry needs, only when it is missing:
# Debian packages for the C libraries and the Python packages used as independent
# reference implementations in the interoperability tests (gmssl, with its dependency
# pycryptodomex, is also what scripts/docs_client.py signs and decrypts keystores with).
set -euo pipefail

need_apt=()
for pkg in librocksdb-dev libsecp256k1-dev libssl-dev openssl pkg-config python3 python3-pip; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
# python3/pip may come from elsewhere (pyenv); only ask apt when no python3 works at all.
if command -v python3 >/dev/null 2>&1; then
    need_apt=("${need_apt[@]/python3}")
    need_apt=("${need_apt[@]/python3-pip}")
    python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
fi
filtered=()
for p in "${need_apt[@]}"; do [ -n "$p" ] && filtered+=("$p"); done
if [ ${#filtered[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${filtered[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${filtered[@]}" >/dev/null
fi

if ! python3 -c "import gmssl, coincurve, cryptography" >/dev/null 2>&1; then
    echo "==> installing Python reference implementations: gmssl coincurve cryptography"
    python3 -m pip install --quiet gmssl coincurve cryptography 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages gmssl coincurve cryptography
fi
