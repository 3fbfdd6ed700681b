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
  without decrypting anything. Index keys have versions too:
  ``nationals.index_key_version`` names the one a record's indexes use,
  lookups try every version of the ring (a rotation may be half done), and
  ``registry keys rotate-index`` re-indexes records under the current one.
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
    """Encryption keys by version; ``current`` encrypts, every version decrypts.

    Index keys likewise: ``index_current`` indexes, every version is looked up.
    """

    current: int
    keys: dict[int, bytes]
    index_current: int
    index_keys: dict[int, bytes]

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

    def blind_index(self, field: str, number: str, version: int | None = None) -> bytes:
        """The index of ``number`` under the current index key (or under ``version``)."""
        key = self.index_keys[self.index_current if version is None else version]
        return hmac.new(key, f"{field}:{number}".encode(), hashlib.sha256).digest()

    def blind_indexes(self, field: str, number: str) -> list[bytes]:
        """The index of ``number`` under every index key, the current one first: what a lookup matches."""
        return [self.blind_index(field, number, v) for v in (self.index_current, *self.older_index_versions)]

    @property
    def older_index_versions(self) -> list[int]:
        """The index key versions other than the current one, newest first."""
        return sorted((v for v in self.index_keys if v != self.index_current), reverse=True)


def _aad(field: str, owner: uuid.UUID) -> bytes:
    return field.encode() + b":" + owner.bytes


def parse_keys(raw: str) -> tuple[int, dict[int, bytes]]:
    """``"2:<hex>,1:<hex>"`` (newest first) → (current version, {version: key}).

    :raises ValueError: malformed entry, bad version, key not 32 bytes, repeated version.
    """
    return _parse_versions(raw, "each entry is <version 1-255>:<64 hex digits>", _encryption_key)


def _encryption_key(key_hex: str) -> bytes:
    key = bytes.fromhex(key_hex)
    if len(key) != 32:
        raise ValueError("each encryption key must be 32 bytes (64 hex digits)")
    return key


def parse_index_keys(raw: str | bytes) -> tuple[int, dict[int, bytes]]:
    """Index keys: one bare hex key (version 1, as before versions existed; bytes are taken as that key)
    or ``"2:<hex>,1:<hex>"``, the first entry current → (current version, {version: key}).

    :raises ValueError: not hex, a key under 32 bytes, bad or repeated version; never quotes a key.
    """
    if isinstance(raw, bytes):
        raw = raw.hex()
    if ":" not in raw and "," not in raw:
        return 1, {1: _index_key(raw.strip())}
    return _parse_versions(raw, "each entry is <version 1-255>:<hex key>", _index_key)


def _index_key(key_hex: str) -> bytes:
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise ValueError("each key must be hex-encoded") from None
    if len(key) < 32:
        raise ValueError("each key must be at least 32 bytes (64 hex digits)")
    return key


def _parse_versions(raw: str, form: str, parse_key) -> tuple[int, dict[int, bytes]]:
    keys: dict[int, bytes] = {}
    order = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        version_text, sep, key_hex = entry.partition(":")
        if not sep or not (version_text.isascii() and version_text.isdigit()) or not 1 <= int(version_text) <= 255:
            raise ValueError(form)
        key = parse_key(key_hex)
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
        ring = Keyring(current, keys, *parse_index_keys(config["REGISTRY_BLIND_INDEX_KEY"]))
        current_app.extensions["sagip_keyring"] = ring
    return ring
