"""Identity document numbers at rest: AES-256-GCM ciphertext and an HMAC blind index.

A passport or national ID number is stored twice, and never in clear:

* ``*_ciphertext``: ``version (1 byte) | nonce (12 bytes) | AES-GCM(ciphertext + tag)``,
  with the field name and the national's id as associated data, so a
  ciphertext copied to another row or column does not decrypt. The version
  names the key of the keyring that wrote it; ``registry keys rotate``
  rewrites every value still under an older key.
* ``*_index``: ``HMAC-SHA-256(index key, "<field>:<number>")``, with a
  different key, so that exact lookups (a passport search needs no
  nationality) and the unique constraint on (nationality, index) work
  without decrypting anything.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

NONCE_BYTES = 12


class DecryptionError(RuntimeError):
    """A stored value does not decrypt: unknown key version or tampered data."""


@dataclass(frozen=True)
class Keyring:
    """Encryption keys by version; ``current`` encrypts, every version decrypts."""

    current: int
    keys: dict[int, bytes]
    index_key: bytes

    def __post_init__(self):
        object.__setattr__(self, "_ciphers", {v: AESGCM(k) for v, k in self.keys.items()})

    def encrypt(self, field: str, owner: uuid.UUID, plaintext: str) -> bytes:
        return self.encrypt_bytes(field, owner, plaintext.encode())

    def decrypt(self, field: str, owner: uuid.UUID, stored: bytes) -> str:
        return self.decrypt_bytes(field, owner, stored).decode()

    def encrypt_bytes(self, field: str, owner: uuid.UUID, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return bytes((self.current,)) + nonce + self._ciphers[self.current].encrypt(nonce, data, _aad(field, owner))

    def decrypt_bytes(self, field: str, owner: uuid.UUID, stored: bytes) -> bytes:
        """:raises DecryptionError: unknown key version, or the value was altered or moved."""
        stored = bytes(stored)
        cipher = self._ciphers.get(stored[0])
        if cipher is None:
            raise DecryptionError(f"no key of version {stored[0]} in the keyring")
        try:
            return cipher.decrypt(stored[1:1 + NONCE_BYTES], stored[1 + NONCE_BYTES:], _aad(field, owner))
        except InvalidTag:
            raise DecryptionError("a stored value failed authentication") from None

    def blind_index(self, field: str, number: str) -> bytes:
        return hmac.new(self.index_key, f"{field}:{number}".encode(), hashlib.sha256).digest()


def _aad(field: str, owner: uuid.UUID) -> bytes:
    return field.encode() + b":" + owner.bytes


def parse_keys(raw: str) -> tuple[int, dict[int, bytes]]:
    """``"2:<hex>,1:<hex>"`` (newest first) → (current version, {version: key}).

    :raises ValueError: malformed entry, bad version, key not 32 bytes, repeated version.
    """
    keys: dict[int, bytes] = {}
    order = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        version_text, sep, key_hex = entry.partition(":")
        if not sep or not version_text.isdigit() or not 1 <= int(version_text) <= 255:
            raise ValueError("each entry is <version 1-255>:<64 hex digits>")
        key = bytes.fromhex(key_hex)
        if len(key) != 32:
            raise ValueError("each encryption key must be 32 bytes (64 hex digits)")
        version = int(version_text)
        if version in keys:
            raise ValueError(f"version {version} is given twice")
        keys[version] = key
        order.append(version)
    if not keys:
        raise ValueError("no key given")
    return order[0], keys


def format_keys(current: int, keys: dict[int, bytes]) -> str:
    ordered = [current] + sorted((v for v in keys if v != current), reverse=True)
    return ",".join(f"{v}:{keys[v].hex()}" for v in ordered)


def keyring() -> Keyring:
    """The application's keyring (built once per app)."""
    ring = current_app.extensions.get("sagip_keyring")
    if ring is None:
        config = current_app.config
        current, keys = parse_keys(config["REGISTRY_ENCRYPTION_KEYS"])
        ring = Keyring(current, keys, config["REGISTRY_BLIND_INDEX_KEY"])
        current_app.extensions["sagip_keyring"] = ring
    return ring
