#!/usr/bin/env python3
"""An independent implementation of the initiator side of Quarry's P2P protocol v1,
written from docs/spec/p2p.md alone (Python: hashlib/hmac for SM3 and HKDF-SM3,
`cryptography` for X25519 and ChaCha20-Poly1305, `gmssl` for SM2). It connects to a node,
authenticates, sends one message on the consensus channel and waits for an expected reply,
answering pings meanwhile. Exit status: 0 success, 2 handshake refused or failed, 3 the
connection closed before the reply, 4 a wrong reply.

Used by QuarryNetworkTests' interoperability test; operators can use it to probe a node:
  python3 scripts/p2p_interop.py --port 26656 --chain quarry-devnet --key HEX \
      --send "hello" --expect "world"
"""
import argparse
import hashlib
import hmac
import os
import socket
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from gmssl import sm2

HANDSHAKE_BODY_MAX = 1024


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def hkdf_sm3(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt, ikm, "sm3").digest()
    return hmac.new(prk, info + b"\x01", "sm3").digest()  # one block: 32 bytes


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def counter_nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + struct.pack(">Q", counter)


class Closed(Exception):
    pass


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise Closed()
        data += chunk
    return data


def recv_frame(sock: socket.socket, limit: int):
    prefix = recv_exact(sock, 4)
    (length,) = struct.unpack(">I", prefix)
    if length > limit:
        raise ValueError(f"frame of {length} bytes over the limit {limit}")
    return prefix, recv_exact(sock, length)


class SM2Key:
    def __init__(self, private_hex: str):
        helper = sm2.CryptSM2(private_key=private_hex, public_key="")
        xy = helper._kg(int(private_hex, 16), sm2.default_ecc_table["g"])
        self.crypt = sm2.CryptSM2(private_key=private_hex, public_key="")
        self.crypt.public_key = xy  # set after construction (the constructor mangles keys)
        self.public = b"\x04" + bytes.fromhex(xy)

    def sign(self, message: bytes) -> bytes:
        while True:
            sig = self.crypt.sign_with_sm3(message)
            if sig:
                return bytes.fromhex(sig)


def sm2_verify(public65: bytes, signature: bytes, message: bytes) -> bool:
    verifier = sm2.CryptSM2(private_key=None, public_key="")
    verifier.public_key = public65[1:].hex()
    return verifier.verify_with_sm3(signature.hex(), message)


def node_id(public65: bytes) -> bytes:
    return sm3(b"\x01" + public65)[:20]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--chain", required=True)
    p.add_argument("--key", required=True, help="this client's SM2 private key, 64 hex digits")
    p.add_argument("--expect-peer", help="the node id expected at the address, 40 hex digits")
    p.add_argument("--send", required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()

    key = SM2Key(args.key)
    chain = args.chain.encode()
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    try:
        # Hello (initiator).
        eph = X25519PrivateKey.generate()
        eph_pub = eph.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        body = b"QRYP" + struct.pack(">H", 1) + b"\x01" + leb128(len(chain)) + chain + eph_pub + os.urandom(32)
        hello_i = struct.pack(">I", len(body)) + body
        sock.sendall(hello_i)

        prefix, body = recv_frame(sock, HANDSHAKE_BODY_MAX)
        hello_r = prefix + body
        if body[:4] != b"QRYP" or struct.unpack(">H", body[4:6])[0] != 1 or body[6] != 2:
            print("bad hello from the node", file=sys.stderr)
            return 2
        n = body[7]  # chain ids are at most 64 bytes: a one-byte LEB128 length
        if body[8:8 + n] != chain:
            print("chain mismatch", file=sys.stderr)
            return 2
        peer_eph = body[8 + n:8 + n + 32]
        if len(body) != 8 + n + 64:
            print("malformed hello", file=sys.stderr)
            return 2

        th = sm3(b"quarry-p2p/1 transcript" + hello_i + hello_r)
        shared = eph.exchange(X25519PublicKey.from_public_bytes(peer_eph))
        if shared == bytes(32):
            return 2
        hs_i2r = ChaCha20Poly1305(hkdf_sm3(shared, th, b"quarry-p2p/1 handshake i2r"))
        hs_r2i = ChaCha20Poly1305(hkdf_sm3(shared, th, b"quarry-p2p/1 handshake r2i"))
        data_i2r = ChaCha20Poly1305(hkdf_sm3(shared, th, b"quarry-p2p/1 data i2r"))
        data_r2i = ChaCha20Poly1305(hkdf_sm3(shared, th, b"quarry-p2p/1 data r2i"))

        # AuthR.
        prefix, body = recv_frame(sock, HANDSHAKE_BODY_MAX)
        plain = hs_r2i.decrypt(counter_nonce(0), body, prefix)
        peer_key, peer_sig = plain[:65], plain[65:]
        if len(plain) != 129 or not sm2_verify(peer_key, peer_sig, b"quarry-p2p/1 auth responder" + th):
            print("the node's auth does not verify", file=sys.stderr)
            return 2
        if args.expect_peer and node_id(peer_key).hex() != args.expect_peer:
            print("unexpected node id", file=sys.stderr)
            return 2

        # AuthI.
        plain = key.public + key.sign(b"quarry-p2p/1 auth initiator" + th)
        prefix = struct.pack(">I", len(plain) + 16)
        sock.sendall(prefix + hs_i2r.encrypt(counter_nonce(0), plain, prefix))

        send_counter = 0
        receive_counter = 0

        def send(channel: int, payload: bytes):
            nonlocal send_counter
            plain = bytes([channel]) + payload
            prefix = struct.pack(">I", len(plain) + 16)
            sock.sendall(prefix + data_i2r.encrypt(counter_nonce(send_counter), plain, prefix))
            send_counter += 1

        send(1, args.send.encode())
        while True:
            try:
                prefix, body = recv_frame(sock, 4 * 1024 * 1024 + 17)
            except Closed:
                print("connection closed before the reply", file=sys.stderr)
                return 3
            plain = data_r2i.decrypt(counter_nonce(receive_counter), body, prefix)
            receive_counter += 1
            channel, payload = plain[0], plain[1:]
            if channel == 0 and payload[:1] == b"\x01":  # ping: answer with a pong
                send(0, b"\x02" + payload[1:9])
            elif channel == 0 and payload[:1] == b"\x03":
                print("the node closed the connection", file=sys.stderr)
                return 3
            elif channel == 1:
                if payload == args.expect.encode():
                    print(f"OK node {node_id(peer_key).hex()}")
                    return 0
                print(f"unexpected reply {payload!r}", file=sys.stderr)
                return 4
    except (Closed, ConnectionResetError):
        print("connection closed during the handshake", file=sys.stderr)
        return 3
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
