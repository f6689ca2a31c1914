#!/usr/bin/env python3
"""A Quarry client written only from docs/spec/*.md and docs/openrpc.json.

It registers a new vehicle with the registrar's key, has the (new) owner sign the
data-rights agreement, then has the vehicle submit a signed mileage claim, all over
JSON-RPC, and checks every result with tx_get and vehicle_get. It prints a JSON summary
on stdout and exits non-zero with a message on stderr on any failure.

Dependencies: Python 3.9+ and the PyPI package `gmssl` (pure-Python SM2/SM3; it brings
`pycryptodomex`, used here only for AES-256-GCM when a keystore file is encrypted).

Where each rule comes from is cited as (file section), all under docs/spec/.

Exit codes: 0 done; 1 refused by the node or the ledger; 2 node unreachable or an answer
not as specified; 3 a local problem (key, genesis file, a claim that cannot pass); 4 a wait
ran out; 64 a usage error.

Usage:
  python3 scripts/docs_client.py --rpc http://127.0.0.1:26601 --network networks/local-4
  python3 scripts/docs_client.py --rpc URL --registrar-key role-keys/registrar.json --genesis genesis.json
  python3 scripts/docs_client.py --self-test        # only the known-answer tests of the docs
"""

import argparse
import hashlib
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

try:
    from gmssl import sm2 as gm_sm2
    from gmssl import sm3 as gm_sm3
except ImportError:  # the caller (and the test) must see this clearly
    sys.stderr.write("docs_client: error: the Python package 'gmssl' is not importable "
                     "(install it with: python3 -m pip install gmssl)\n")
    sys.exit(3)


class ClientError(Exception):
    """A failure with a message for people; exit code chosen by the kind of failure."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------------------
# SM3 (crypto.md section 1)

def sm3(data: bytes) -> bytes:
    return bytes.fromhex(gm_sm3.sm3_hash(list(data)))


# ---------------------------------------------------------------------------------------
# Canonical encoding (encoding.md)

def u8(v: int) -> bytes:
    if not 0 <= v < 1 << 8:
        raise ClientError(f"u8 out of range: {v}", 3)
    return bytes([v])


def u32(v: int) -> bytes:
    if not 0 <= v < 1 << 32:
        raise ClientError(f"u32 out of range: {v}", 3)
    return v.to_bytes(4, "big")


def u64(v: int) -> bytes:
    if not 0 <= v < 1 << 64:
        raise ClientError(f"u64 out of range: {v}", 3)
    return v.to_bytes(8, "big")


def boolean(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def varint(v: int) -> bytes:
    """Unsigned LEB128, shortest form, at most 2^32 - 1 (encoding.md, Varint)."""
    if not 0 <= v <= 0xFFFFFFFF:
        raise ClientError(f"varint out of range: {v}", 3)
    out = bytearray()
    while True:
        group = v & 0x7F
        v >>= 7
        if v:
            out.append(group | 0x80)
        else:
            out.append(group)
            return bytes(out)


def string(text: str, max_bytes: int) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        raise ClientError(f"string longer than {max_bytes} bytes: {text!r}", 3)
    return varint(len(raw)) + raw


def fixed(raw: bytes, n: int) -> bytes:
    if len(raw) != n:
        raise ClientError(f"expected {n} bytes, got {len(raw)}", 3)
    return raw


def str_list(items, max_count: int, max_bytes: int) -> bytes:
    if len(items) > max_count:
        raise ClientError(f"list longer than {max_count}", 3)
    return varint(len(items)) + b"".join(string(s, max_bytes) for s in items)


# ---------------------------------------------------------------------------------------
# SM2 (crypto.md section 3), on top of gmssl's curve arithmetic

SM2_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
SM2_A = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
SM2_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
SM2_XG = int("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", 16)
SM2_YG = int("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", 16)
SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
SM2_DEFAULT_ID = b"1234567812345678"  # the ledger always uses this ID (crypto.md 3.3)

SCHEME_SM2 = 1
SCHEME_SECP256K1 = 2


def _curve_table():
    """gmssl's curve table, checked against the parameters of crypto.md 3.1."""
    table = gm_sm2.default_ecc_table
    if (int(table["p"], 16), int(table["a"], 16), int(table["b"], 16), int(table["n"], 16),
            int(table["g"][:64], 16), int(table["g"][64:], 16)) != (SM2_P, SM2_A, SM2_B, SM2_N, SM2_XG, SM2_YG):
        raise ClientError("gmssl's SM2 curve parameters differ from crypto.md 3.1", 2)
    return table


def _engine(private_hex: str, public_xy_hex: str):
    engine = gm_sm2.CryptSM2(private_key=private_hex, public_key="", ecc_table=_curve_table())
    # TOOLCHAIN: gmssl's constructor strips "04" with lstrip, which corrupts keys whose X
    # starts with 0 or 4, so the key is set after construction (X || Y, no prefix).
    engine.public_key = public_xy_hex
    return engine


def on_curve(x: int, y: int) -> bool:
    return x < SM2_P and y < SM2_P and (y * y - (x * x * x + SM2_A * x + SM2_B)) % SM2_P == 0


class SM2Key:
    """An SM2 private key d in [1, n-2] (crypto.md 3.2) and its public point."""

    def __init__(self, d: int):
        if not 1 <= d <= SM2_N - 2:
            raise ClientError("SM2 private key out of range [1, n-2] (crypto.private_key_out_of_range)", 3)
        self.d = d
        xy = _engine("%064x" % d, "")._kg(d, _curve_table()["g"])
        if xy is None:
            raise ClientError("SM2 public key computation failed", 3)
        self.x, self.y = int(xy[:64], 16), int(xy[64:], 16)
        if not on_curve(self.x, self.y):
            raise ClientError("computed SM2 public key is not on the curve", 3)

    @staticmethod
    def generate() -> "SM2Key":
        return SM2Key(1 + secrets.randbelow(SM2_N - 2))  # uniform in [1, n-2]

    @property
    def public_key(self) -> bytes:
        """Ledger form: 65 bytes 04 || X || Y."""
        return b"\x04" + self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big")

    @property
    def public_key_field(self) -> bytes:
        """`PublicKey` = scheme byte then the key (transactions.md section 1)."""
        return u8(SCHEME_SM2) + self.public_key

    @property
    def address(self) -> bytes:
        return address_of(SCHEME_SM2, self.public_key)

    def sign(self, message: bytes, ident: bytes = SM2_DEFAULT_ID, fixed_k=None) -> bytes:
        """SM2 signature r || s of `message` through Z (crypto.md 3.3, 3.4).

        The nonce comes from the operating system's CSPRNG (`secrets`), never from gmssl's
        own generator (TOOLCHAIN: it is not a secure source). `fixed_k` exists only for the
        known-answer test of crypto.md 3.6."""
        e = sm2_digest(self.public_key, message, ident)
        engine = _engine("%064x" % self.d, self.public_key[1:].hex())
        for _ in range(64):
            k = fixed_k if fixed_k is not None else 1 + secrets.randbelow(SM2_N - 1)
            sig = engine.sign(e, "%064x" % k)
            if sig is not None:
                r, s = int(sig[:64], 16), int(sig[64:], 16)
                if 1 <= r < SM2_N and 1 <= s < SM2_N and (r + s) % SM2_N != 0:
                    out = r.to_bytes(32, "big") + s.to_bytes(32, "big")
                    if not sm2_verify(self.public_key, message, out, ident):
                        raise ClientError("SM2 signature does not verify locally", 3)
                    return out
            if fixed_k is not None:
                raise ClientError("the fixed nonce gives no signature", 3)
        raise ClientError("SM2 signing failed 64 times", 3)


def sm2_z(public_key: bytes, ident: bytes) -> bytes:
    """Z = SM3(ENTL || ID || a || b || xG || yG || X || Y) (crypto.md 3.3)."""
    if len(ident) > 8191:
        raise ClientError("SM2 ID longer than 8191 bytes (crypto.identifier_too_long)", 3)
    if len(public_key) != 65 or public_key[0] != 4:
        raise ClientError("SM2 public key must be 65 bytes 04 || X || Y", 3)
    entl = (len(ident) * 8).to_bytes(2, "big")
    parts = [SM2_A, SM2_B, SM2_XG, SM2_YG]
    return sm3(entl + ident + b"".join(v.to_bytes(32, "big") for v in parts) + public_key[1:])


def sm2_digest(public_key: bytes, message: bytes, ident: bytes = SM2_DEFAULT_ID) -> bytes:
    """e = SM3(Z || M) (crypto.md 3.3)."""
    return sm3(sm2_z(public_key, ident) + message)


def sm2_verify(public_key: bytes, message: bytes, signature: bytes, ident: bytes = SM2_DEFAULT_ID) -> bool:
    """Verification with the checks of crypto.md 3.5."""
    if len(signature) != 64 or len(public_key) != 65 or public_key[0] != 4:
        return False
    x, y = int.from_bytes(public_key[1:33], "big"), int.from_bytes(public_key[33:], "big")
    if not on_curve(x, y):
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (1 <= r < SM2_N and 1 <= s < SM2_N) or (r + s) % SM2_N == 0:
        return False
    engine = _engine("00", public_key[1:].hex())
    return bool(engine.verify(signature.hex(), sm2_digest(public_key, message, ident)))


# ---------------------------------------------------------------------------------------
# Addresses: scheme || SM3(scheme || key)[0..<20], Bech32m text (crypto.md section 6)

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32M_CONST = 0x2BC830A3
HRP = "quarry"


def _polymod(values) -> int:
    generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= generators[i]
    return chk


def _hrp_expand(hrp: str):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_5bit(data: bytes):
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)  # zero padding
    return out


def _from_5bit(groups):
    acc, bits, out = 0, 0, bytearray()
    for g in groups:
        acc = (acc << 5) | g
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or (acc & ((1 << bits) - 1)):
        raise ClientError("address.invalid: bad padding", 3)
    return bytes(out)


def address_of(scheme: int, public_key: bytes) -> bytes:
    return bytes([scheme]) + sm3(bytes([scheme]) + public_key)[:20]


def address_text(addr: bytes) -> str:
    data = _to_5bit(addr)
    checksum_input = _hrp_expand(HRP) + data + [0] * 6
    pm = _polymod(checksum_input) ^ BECH32M_CONST
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return HRP + "1" + "".join(BECH32_CHARSET[g] for g in data + checksum)


def address_parse(text: str) -> bytes:
    if text.lower() != text and text.upper() != text:
        raise ClientError(f"address.invalid: mixed case in {text!r}", 3)
    text = text.lower()
    pos = text.rfind("1")
    if text[:pos] != HRP or pos + 7 > len(text):
        raise ClientError(f"address.invalid: not a {HRP}1... address: {text!r}", 3)
    try:
        groups = [BECH32_CHARSET.index(c) for c in text[pos + 1:]]
    except ValueError:
        raise ClientError(f"address.invalid: bad character in {text!r}", 3) from None
    if _polymod(_hrp_expand(HRP) + groups) != BECH32M_CONST:
        raise ClientError(f"address.invalid: wrong checksum in {text!r}", 3)
    raw = _from_5bit(groups[:-6])
    if len(raw) != 21 or raw[0] not in (SCHEME_SM2, SCHEME_SECP256K1):
        raise ClientError(f"address.invalid: not 21 bytes with a known scheme: {text!r}", 3)
    return raw


# ---------------------------------------------------------------------------------------
# Transactions (transactions.md sections 2 and 3)

TX_DOMAIN = b"QUARRY/TX/V1"  # 12 ASCII bytes, no length prefix
TX_BYTES_MAX = 16_384

TAG_REGISTER_VEHICLE = 1
TAG_SIGN_AGREEMENT = 4
TAG_MILEAGE_CLAIM = 6


def payload_register_vehicle(vehicle_id: bytes, vehicle_key: bytes, model: str, cohorts, owner: bytes,
                             odometer: int) -> bytes:
    return (u8(TAG_REGISTER_VEHICLE) + fixed(vehicle_id, 32) + u8(SCHEME_SM2) + fixed(vehicle_key, 65)
            + string(model, 64) + str_list(cohorts, 16, 64) + fixed(owner, 21) + u64(odometer))


def payload_sign_agreement(version: bytes) -> bytes:
    return u8(TAG_SIGN_AGREEMENT) + fixed(version, 32)


def payload_mileage_claim(vehicle_id: bytes, odo_start: int, odo_end: int, span_start: int, span_end: int,
                          trip_digest: bytes) -> bytes:
    return (u8(TAG_MILEAGE_CLAIM) + fixed(vehicle_id, 32) + u64(odo_start) + u64(odo_end)
            + u64(span_start) + u64(span_end) + fixed(trip_digest, 32))


def signed_transaction(chain_id: str, nonce: int, signer: SM2Key, payload: bytes):
    """Returns (canonical SignedTransaction bytes, transaction hash)."""
    body = string(chain_id, 64) + u64(nonce) + signer.public_key_field + payload
    signature = signer.sign(TX_DOMAIN + body)
    tx = body + signature
    if len(tx) > TX_BYTES_MAX:
        raise ClientError("transaction larger than 16,384 bytes", 3)
    return tx, sm3(tx)


# ---------------------------------------------------------------------------------------
# Genesis identity (genesis.md, Identity): checks the genesis file belongs to the node

GENESIS_DOMAIN = b"QUARRY/GENESIS/V1"


def _grains(value, field):
    if not isinstance(value, str) or not value.isdigit() or (len(value) > 1 and value[0] == "0"):
        raise ClientError(f"genesis: {field} must be a decimal string of grains", 3)
    return int(value)


def genesis_hash(g: dict) -> bytes:
    try:
        out = string(g["chainId"], 64) + u64(g["genesisTime"])
        validators = g["validators"]
        out += varint(len(validators))
        for v in validators:
            key = bytes.fromhex(v["publicKey"])
            out += string(v["name"], 64) + u8(SCHEME_SM2) + fixed(key, 65) + u64(v["power"])
        roles = g["roles"]
        out += b"".join(address_parse(roles[r]) for r in ("registrar", "crystalIssuer", "boxOperator"))
        merchants = sorted(address_parse(m) for m in roles["merchants"])
        out += varint(len(merchants)) + b"".join(merchants)
        e = g["economics"]
        out += (u64(e["batchSeconds"]) + u64(_grains(e["initialDropGrains"], "initialDropGrains"))
                + u64(e["halvingIntervalBatches"]) + u64(_grains(e["mileagePoolGrains"], "mileagePoolGrains"))
                + u64(_grains(e["cultivationPoolGrains"], "cultivationPoolGrains")) + u64(e["maxSpeedKmh"])
                + u64(e["claimStalenessSeconds"]) + u64(e["clockToleranceSeconds"]) + u64(e["claimSpanMaxSeconds"])
                + boolean(e["transfersEnabled"]) + u64(e["settlementChunkMax"]) + u64(e["refundChunkMax"]))
        c = g["consensus"]
        out += b"".join(u64(c[f]) for f in ("blockBytesMax", "blockTransactionsMax", "timeoutProposeMs",
                                            "timeoutPrevoteMs", "timeoutPrecommitMs", "timeoutCommitMs"))
    except (KeyError, TypeError, ValueError) as err:
        raise ClientError(f"genesis file is malformed: {err!r}", 3) from None
    return sm3(GENESIS_DOMAIN + out)


# ---------------------------------------------------------------------------------------
# Keystore files (keystore.md)

def load_keystore_key(path: str, passphrase) -> SM2Key:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except OSError as err:
        raise ClientError(f"cannot read the key file {path}: {err.strerror}", 3) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ClientError(f"keystore.malformed: {path} is not JSON: {err}", 3) from None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise ClientError(f"keystore.malformed: {path} is not a version 1 key file", 3)
    if doc.get("scheme") != "sm2":
        raise ClientError(f"{path}: scheme {doc.get('scheme')!r}; this client signs with SM2 keys only", 3)
    try:
        public_key = bytes.fromhex(doc["publicKey"])
        address = address_parse(doc["address"])
        name = doc["name"]
    except (KeyError, ValueError, TypeError):
        raise ClientError(f"keystore.malformed: {path} lacks a valid publicKey, address or name", 3) from None
    if address != address_of(SCHEME_SM2, public_key):
        raise ClientError(f"keystore.malformed: {path}: the address does not match the public key", 3)
    if "insecurePlaintextPrivateKey" in doc:
        raw = bytes.fromhex(doc["insecurePlaintextPrivateKey"])
    elif "crypto" in doc:
        raw = _decrypt_keystore(doc, path, passphrase, name, public_key)
    else:
        raise ClientError(f"keystore.malformed: {path} has neither crypto nor a plain-text key", 3)
    if len(raw) != 32:
        raise ClientError(f"keystore.malformed: {path}: the private key is not 32 bytes", 3)
    key = SM2Key(int.from_bytes(raw, "big"))
    if key.public_key != public_key:
        raise ClientError(f"keystore.malformed: {path}: the private key does not give the public key", 3)
    return key


def _decrypt_keystore(doc, path, passphrase, name, public_key) -> bytes:
    if passphrase is None:
        raise ClientError(f"keystore.passphrase_required: {path} is encrypted; give --passphrase-file "
                          "or QUARRY_PASSPHRASE", 3)
    c = doc["crypto"]
    try:
        log_n, r, p = c["logN"], c["r"], c["p"]
        salt, nonce = bytes.fromhex(c["salt"]), bytes.fromhex(c["nonce"])
        ciphertext, tag = bytes.fromhex(c["ciphertext"]), bytes.fromhex(c["tag"])
        if c["kdf"] != "scrypt" or c["cipher"] != "aes-256-gcm":
            raise ValueError("kdf/cipher")
    except (KeyError, ValueError, TypeError):
        raise ClientError(f"keystore.malformed: {path}: bad crypto section", 3) from None
    if not (10 <= log_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ClientError(f"keystore.malformed: {path}: scrypt parameters out of bounds", 3)
    n = 1 << log_n
    key = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32,
                         maxmem=128 * r * (n + p + 2) + (1 << 20))
    aad = (string("quarry-keystore-v1", 64) + string(name, 64) + string(doc["scheme"], 64)
           + string(doc["publicKey"], 1024))
    try:
        from Cryptodome.Cipher import AES  # pycryptodomex, which gmssl depends on
    except ImportError:
        raise ClientError("decrypting a keystore file needs pycryptodomex (a dependency of gmssl)", 3) from None
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    try:
        return cipher.decrypt_and_verify(ciphertext, tag)
    except ValueError:
        raise ClientError(f"keystore.wrong_passphrase: {path}: wrong passphrase, or the file was altered", 3) from None


# ---------------------------------------------------------------------------------------
# JSON-RPC over HTTP (json-rpc.md sections 1-3)

class RPC:
    def __init__(self, url: str, timeout: float):
        self.url = url if "://" in url else "http://" + url
        self.timeout = timeout
        self.next_id = 1

    def call(self, method: str, params: dict, timeout=None):
        request = {"jsonrpc": "2.0", "method": method, "params": params, "id": self.next_id}
        self.next_id += 1
        body = json.dumps(request).encode("utf-8")
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:  # non-200 statuses carry an error object too
            raw = err.read()
            if not raw:
                raise ClientError(f"{method}: HTTP {err.code} from {self.url}", 2) from None
        except (urllib.error.URLError, OSError) as err:
            raise ClientError(f"{method}: cannot reach the node at {self.url}: {err}", 2) from None
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ClientError(f"{method}: the node's answer is not JSON", 2) from None
        if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
            raise ClientError(f"{method}: not a JSON-RPC 2.0 response: {raw[:200]!r}", 2)
        if "error" in answer:
            raise RPCError(method, answer["error"])
        if answer.get("id") != request["id"] or "result" not in answer:
            raise ClientError(f"{method}: response id or result missing: {raw[:200]!r}", 2)
        return answer["result"]


class RPCError(ClientError):
    def __init__(self, method, error):
        self.error = error if isinstance(error, dict) else {}
        data = self.error.get("data") if isinstance(self.error.get("data"), dict) else {}
        self.data = data
        self.code = self.error.get("code")
        self.data_code = data.get("code", "?")
        reason = data.get("reason", self.error.get("message", ""))
        super().__init__(f"{method}: {reason} ({self.data_code}, JSON-RPC error {self.code})", 1)


# ---------------------------------------------------------------------------------------
# The flow

def submit_committed(rpc: RPC, tx: bytes, tx_hash: bytes, kind: str, deadline_seconds: float):
    """tx_submit with wait "committed" (json-rpc.md 8.3), then tx_get must say committed."""
    try:
        result = rpc.call("tx_submit", {"tx": tx.hex(), "wait": "committed"}, timeout=45)
        if result.get("hash") != tx_hash.hex():
            raise ClientError(f"{kind}: the node's hash {result.get('hash')} is not SM3 of the bytes "
                              f"({tx_hash.hex()})", 2)
        if result.get("status") != "committed":
            raise ClientError(f"{kind}: tx_submit answered status {result.get('status')!r}", 2)
    except RPCError as err:
        if err.code == -32005:  # the wait ran out; the transaction may still commit
            pass
        elif err.code == -32000 and "height" in err.data:
            raise ClientError(f"the ledger refused the {kind} at height {err.data.get('height')}: "
                              f"{err.data.get('reason')} ({err.data_code})", 1) from None
        else:
            raise ClientError(f"the node refused the {kind}: {err}", 1) from None
    deadline = time.monotonic() + deadline_seconds
    while True:
        got = rpc.call("tx_get", {"hash": tx_hash.hex()})
        status = got.get("status")
        if status == "committed":
            return got
        if status == "rejected":
            e = got.get("error") or {}
            raise ClientError(f"the ledger refused the {kind} at height {got.get('height')}: "
                              f"{e.get('reason')} ({e.get('code')})", 1)
        if time.monotonic() > deadline:
            raise ClientError(f"{kind} {tx_hash.hex()} still {status!r} after {deadline_seconds:.0f} s", 4)
        time.sleep(0.5)


def events_of(got: dict, kind: str):
    return [e for e in (got.get("result") or {}).get("events", []) if e.get("kind") == kind]


VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # upper case without I, O, Q (cli.md, Vehicle ids)


def run(args) -> dict:
    self_test()
    rpc = RPC(args.rpc, args.timeout)

    registrar_path = args.registrar_key or (os.path.join(args.network, "role-keys", "registrar.json")
                                            if args.network else None)
    genesis_path = args.genesis or (os.path.join(args.network, "genesis.json") if args.network else None)
    if not registrar_path or not genesis_path:
        raise ClientError("give --network DIR, or both --registrar-key FILE and --genesis FILE", 64)
    passphrase = None
    if args.passphrase_file:
        try:
            with open(args.passphrase_file, encoding="utf-8") as f:
                passphrase = f.readline().rstrip("\r\n")
        except OSError as err:
            raise ClientError(f"cannot read the passphrase file: {err.strerror}", 3) from None
    elif "QUARRY_PASSPHRASE" in os.environ:
        passphrase = os.environ["QUARRY_PASSPHRASE"]
    registrar = load_keystore_key(registrar_path, passphrase)

    try:
        with open(genesis_path, "rb") as f:
            genesis = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ClientError(f"cannot read the genesis file {genesis_path}: {err}", 3) from None

    status = rpc.call("node_status", {})
    chain_id = status["chainId"]
    if genesis_hash(genesis).hex() != status["genesisHash"]:
        raise ClientError(f"{genesis_path} is not the genesis of the node's chain: its hash "
                          f"{genesis_hash(genesis).hex()} differs from node_status genesisHash {status['genesisHash']}", 3)
    if address_parse(genesis["roles"]["registrar"]) != registrar.address:
        raise ClientError(f"{registrar_path} is not the registrar of the genesis "
                          f"({genesis['roles']['registrar']})", 3)
    econ = genesis["economics"]

    def nonce_of(addr: bytes) -> int:
        account = rpc.call("account_get", {"address": address_text(addr)})
        return account["nonce"]

    # 1. The registrar registers a new vehicle with a fresh key for a fresh owner.
    vehicle_key, owner_key = SM2Key.generate(), SM2Key.generate()
    vin = "".join(secrets.choice(VIN_CHARS) for _ in range(17))
    salt = secrets.token_bytes(16)
    vehicle_id = sm3(salt + vin.encode("ascii"))
    odometer = args.odometer
    tx, h_register = signed_transaction(chain_id, nonce_of(registrar.address), registrar, payload_register_vehicle(
        vehicle_id, vehicle_key.public_key, args.model, [args.cohort], owner_key.address, odometer))
    got_register = submit_committed(rpc, tx, h_register, "registerVehicle", args.timeout)
    if not events_of(got_register, "vehicle.registered"):
        raise ClientError(f"registerVehicle committed without a vehicle.registered event: {got_register}", 2)

    # 2. The owner signs the data-rights agreement (its version is the SM3 of the text).
    #    --skip-agreement leaves it out, so that the ledger refuses the claim (claim.no_consent):
    #    a way to see this client report a refusal.
    agreement_text = args.agreement_text.encode("utf-8")
    version = sm3(agreement_text)
    got_agreement = {"status": "skipped"}
    h_agreement = b""
    if not args.skip_agreement:
        tx, h_agreement = signed_transaction(chain_id, nonce_of(owner_key.address), owner_key,
                                             payload_sign_agreement(version))
        got_agreement = submit_committed(rpc, tx, h_agreement, "signAgreement", args.timeout)
        owner_account = rpc.call("account_get", {"address": address_text(owner_key.address)})
        if owner_account.get("agreement") != version.hex():
            raise ClientError(f"account_get shows agreement {owner_account.get('agreement')}, "
                              f"expected {version.hex()}", 2)

    # 3. The vehicle claims a span that starts where its record says (lastSpanEnd, odometer).
    record = rpc.call("vehicle_get", {"vehicleId": vehicle_id.hex()})
    if record.get("address") != address_text(vehicle_key.address) or record.get("owner") != address_text(owner_key.address):
        raise ClientError(f"vehicle_get does not show the registered key and owner: {record}", 2)
    span_start = record["lastSpanEnd"]
    odo_start = record["odometerMetres"]
    span = min(args.span_seconds, econ["claimSpanMaxSeconds"])
    span_end = span_start + span
    # Speed rule (transactions.md, Mileage claims): metres * 3600 <= maxSpeedKmh * 1000 * span.
    limit = econ["maxSpeedKmh"] * 1000 * span // 3600
    metres = args.metres if args.metres is not None else max(1, limit // 2)
    if metres < 1 or metres * 3600 > econ["maxSpeedKmh"] * 1000 * span:
        raise ClientError(f"{metres} m in {span} s is over the {econ['maxSpeedKmh']} km/h limit "
                          f"(at most {limit} m)", 3)
    # Clock rule: spanEnd <= now + clockToleranceSeconds, now = the including block's time.
    # Block times only grow, so wait (bounded) until the latest block time allows the end.
    wait_until = time.monotonic() + args.timeout
    while True:
        latest = rpc.call("node_status", {})["latestBlockTimeMilliseconds"] // 1000
        if span_end <= latest + econ["clockToleranceSeconds"]:
            break
        if time.monotonic() > wait_until:
            raise ClientError(f"block time {latest} did not reach {span_end} - tolerance in time", 4)
        time.sleep(0.5)
    trip = json.dumps({"vin": vin, "from": span_start, "to": span_end, "metres": metres}, sort_keys=True)
    trip_digest = sm3(trip.encode("utf-8"))
    tx, h_claim = signed_transaction(chain_id, nonce_of(vehicle_key.address), vehicle_key, payload_mileage_claim(
        vehicle_id, odo_start, odo_start + metres, span_start, span_end, trip_digest))
    got_claim = submit_committed(rpc, tx, h_claim, "mileageClaim", args.timeout)
    accepted = events_of(got_claim, "claim.accepted")
    if not accepted:
        raise ClientError(f"the claim committed without a claim.accepted event: {got_claim}", 2)

    after = rpc.call("vehicle_get", {"vehicleId": vehicle_id.hex()})
    if after["totalClaimedMetres"] != metres or after["odometerMetres"] != odo_start + metres \
            or after["lastSpanEnd"] != span_end:
        raise ClientError(f"vehicle_get after the claim does not show it: {after}", 2)

    return {
        "chainId": chain_id,
        "registrar": address_text(registrar.address),
        "vehicleId": vehicle_id.hex(),
        "vehicleAddress": address_text(vehicle_key.address),
        "vehiclePublicKey": vehicle_key.public_key.hex(),
        "owner": address_text(owner_key.address),
        "agreementVersion": version.hex(),
        "claim": {"odometerStartMetres": odo_start, "odometerEndMetres": odo_start + metres, "metres": metres,
                  "spanStart": span_start, "spanEnd": span_end, "tripDigest": trip_digest.hex(),
                  "batch": accepted[0].get("attributes", {}).get("batch")},
        "transactions": {
            "registerVehicle": {"hash": h_register.hex(), "status": got_register["status"], "height": got_register.get("height")},
            "signAgreement": {"hash": h_agreement.hex(), "status": got_agreement["status"], "height": got_agreement.get("height")},
            "mileageClaim": {"hash": h_claim.hex(), "status": got_claim["status"], "height": got_claim.get("height")},
        },
        "vehicleAfter": {"odometerMetres": after["odometerMetres"], "lastSpanEnd": after["lastSpanEnd"],
                         "totalClaimedMetres": after["totalClaimedMetres"]},
    }


# ---------------------------------------------------------------------------------------
# Known answers given by the docs

def self_test():
    def check(what, got, want):
        if got != want:
            raise ClientError(f"self-test failed: {what}: got {got}, the docs say {want}", 3)

    check("SM3('')", sm3(b"").hex(), "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b")
    check("SM3('abc')", sm3(b"abc").hex(), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    check("SM3('abcd'*16)", sm3(b"abcd" * 16).hex(), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")
    for value, want in [(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001"), (4294967295, "ffffffff0f")]:
        check(f"varint({value})", varint(value).hex(), want)
    worked = (258).to_bytes(2, "big") + string("\u00e9", 32) + b"\x00" + varint(1) + u32(1)
    check("encoding worked example", worked.hex(), "0102" + "02c3a9" + "00" + "0100000001")
    # crypto.md 3.6 (GB/T 32918.5-2017 Annex A)
    key = SM2Key(int("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8", 16))
    check("SM2 example P", key.public_key.hex(), "04" + "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
          "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13".lower())
    check("SM2 example Z", sm2_z(key.public_key, SM2_DEFAULT_ID).hex(),
          "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3".lower())
    check("SM2 example e", sm2_digest(key.public_key, b"message digest").hex(),
          "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640".lower())
    sig = key.sign(b"message digest", fixed_k=int("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21", 16))
    check("SM2 example (r, s)", sig.hex(), ("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
                                           "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA").lower())
    check("SM2 example address bytes", key.address.hex(), "016a0fd8b812133c179bcdb7f8dd1c1922a60c0490")
    check("SM2 example address text", address_text(key.address), "quarry1q94qlk9czgfnc9umekml3hgury32vrqyjq6g8k69")
    check("address round trip", address_parse(address_text(key.address)), key.address)
    # A fresh signature with a random nonce verifies, and a flipped bit does not.
    fresh = key.sign(b"quarry")
    check("fresh signature verifies", sm2_verify(key.public_key, b"quarry", fresh), True)
    check("altered message is refused", sm2_verify(key.public_key, b"quarrz", fresh), False)


def main(argv=None) -> int:
    class Parser(argparse.ArgumentParser):
        def error(self, message):  # usage errors exit 64, apart from the codes of failures
            self.print_usage(sys.stderr)
            sys.stderr.write(f"docs_client: error: {message}\n")
            sys.exit(64)

    parser = Parser(description="Register a vehicle, sign the agreement and submit a mileage "
                                                 "claim against a Quarry node, using only the published docs.")
    parser.add_argument("--rpc", help="the node's JSON-RPC URL, e.g. http://127.0.0.1:26601")
    parser.add_argument("--network", help="a `quarry testnet` directory: DIR/role-keys/registrar.json and DIR/genesis.json")
    parser.add_argument("--registrar-key", help="the registrar's keystore file (keystore.md)")
    parser.add_argument("--genesis", help="the chain's genesis.json (checked against node_status genesisHash)")
    parser.add_argument("--passphrase-file", help="passphrase of an encrypted registrar key (first line); "
                                                  "else $QUARRY_PASSPHRASE")
    parser.add_argument("--model", default="LS6")
    parser.add_argument("--cohort", default="docs-client")
    parser.add_argument("--odometer", type=int, default=1000, help="odometer at registration, metres (default 1000)")
    parser.add_argument("--span-seconds", type=int, default=10, help="length of the claimed span (default 10)")
    parser.add_argument("--metres", type=int, help="distance claimed (default: half the speed limit over the span)")
    parser.add_argument("--agreement-text", default="Quarry data-rights agreement v1")
    parser.add_argument("--skip-agreement", action="store_true",
                        help="do not sign the agreement: the ledger then refuses the claim (claim.no_consent), exit 1")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step (default 60)")
    parser.add_argument("--self-test", action="store_true", help="run only the known-answer tests and exit")
    args = parser.parse_args(argv)
    try:
        if args.self_test:
            self_test()
            print(json.dumps({"selfTest": "passed"}))
            return 0
        if not args.rpc:
            raise ClientError("--rpc URL is required", 64)
        if args.span_seconds < 1 or args.odometer < 0:
            raise ClientError("--span-seconds must be at least 1 and --odometer not negative", 64)
        summary = run(args)
    except ClientError as err:
        sys.stderr.write(f"docs_client: error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("docs_client: interrupted\n")
        return 130
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
