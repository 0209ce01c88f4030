"""Magento 2.4's encrypted values and password hashes, computed here independently of the
server, for the import tests (tests/api/magento_import.rs).

Reads a JSON request on standard input:
  {"keys": [crypt/key entries, oldest first],
   "encrypt": [{"version": key version, "plain": text}, ...],
   "hash": [{"password": ..., "salt": ..., "versions": "1" | "0:1" | "3_32_2_8388608" ...}, ...]}
and writes {"encrypted": [...], "hashes": [...]} in the same order.

Encryption is Magento's Encryptor::encrypt with cipher 3 (SodiumChachaIetf):
ChaCha20-Poly1305 (IETF) with a random 12-byte nonce that is also the associated data,
written `<key version>:3:<base64(nonce || ciphertext || tag)>`; a key written `base64...` is
that base64 decoded. Hashes follow Encryptor::getHash / isValidHash: each version of the chain
hashes the previous result: 0 md5(salt + x), 1 sha256(salt + x) in hex; 2 and 3_<len>_<ops>_<mem>
Argon2id (libsodium's crypto_pwhash: one lane, version 0x13) of x with the salt padded or cut
to 16 bytes, in hex.
"""
import base64
import hashlib
import json
import os
import sys

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305


def key_bytes(key):
    return base64.b64decode(key[len("base64"):]) if key.startswith("base64") else key.encode()


def encrypt(keys, version, plain):
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(key_bytes(keys[version])).encrypt(nonce, plain.encode(), nonce)
    return f"{version}:3:" + base64.b64encode(nonce + sealed).decode()


def magento_hash(password, salt, versions):
    recreated = password
    for version in versions.split(":"):
        if version in ("0", "1"):
            digest = hashlib.md5 if version == "0" else hashlib.sha256
            recreated = digest((salt + recreated).encode()).hexdigest()
            continue
        if version == "2":
            length, ops, mem = 32, 2, 67108864
        else:
            _, length, ops, mem = (int(p) for p in version.split("_"))
        salt16 = (salt.encode() * 16)[:16]
        recreated = hash_secret_raw(
            recreated.encode(), salt16, time_cost=ops, memory_cost=mem // 1024,
            parallelism=1, hash_len=length, type=Type.ID, version=19,
        ).hex()
    return f"{recreated}:{salt}:{versions}"


request = json.load(sys.stdin)
json.dump(
    {
        "encrypted": [encrypt(request["keys"], e["version"], e["plain"]) for e in request["encrypt"]],
        "hashes": [magento_hash(h["password"], h["salt"], h["versions"]) for h in request["hash"]],
    },
    sys.stdout,
)
