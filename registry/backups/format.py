"""The backup file: AES-256-GCM in framed chunks, streamed (nothing is held whole, in memory or on disk).

Layout (big-endian)::

    header   magic "SAGIPBAK" (8) | format version (1) | key id (8) | salt (16) | largest chunk (4)
    frame*   flags (1) | ciphertext length (4) | nonce (12) | ciphertext with its 16-byte GCM tag

* The key id is the first 8 bytes of HMAC-SHA-256(backup key, "sagip backup key id"): it tells a wrong key
  from a damaged file without revealing anything of the key.
* Each file encrypts under its own key, HKDF-SHA-256(backup key, salt), with a random nonce per chunk.
* A chunk's associated data is the whole header, its number (8 bytes) and its flags, so a chunk altered,
  moved, dropped, taken from another backup, or a header altered fails authentication. Flag bit 0 marks the
  last chunk: a file cut anywhere, even between two chunks, lacks it and is refused.
* Chunk 0 holds the manifest (JSON: the keys, counts, roles); the others the pg_dump archive, whose last
  bytes are always in the final chunk. A reader hands out a chunk only once it authenticated.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SAGIPBAK"
VERSION = 1
HEADER = struct.Struct(">8sB8s16sI")
FRAME = struct.Struct(">BI12s")
CHUNK_NUMBER = struct.Struct(">QB")
FINAL = 0x01
TAG_BYTES = 16
CHUNK_BYTES = 1 << 20
MAX_CHUNK_BYTES = 16 << 20  # a header asking for more is damaged: nothing that large is read before it verifies


class BackupFileError(ValueError):
    """The file cannot be restored; the message says why (never quoting key material)."""


class NotABackup(BackupFileError):
    pass


class WrongKey(BackupFileError):
    pass


class Corrupted(BackupFileError):
    pass


class Truncated(BackupFileError):
    pass


def key_id(key: bytes) -> str:
    """The public name of a backup key (16 hex digits)."""
    return hmac.new(key, b"sagip backup key id", hashlib.sha256).digest()[:8].hex()


def _cipher(key: bytes, salt: bytes) -> AESGCM:
    file_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"sagip backup v1 file key").derive(key)
    return AESGCM(file_key)


def _aad(header: bytes, number: int, flags: int) -> bytes:
    return header + CHUNK_NUMBER.pack(number, flags)


class Writer:
    """Writes the header, then one encrypted frame per ``write_chunk``."""

    def __init__(self, out: BinaryIO, key: bytes, chunk_bytes: int = CHUNK_BYTES):
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError("chunk size out of range")
        salt = os.urandom(16)
        self._out = out
        self._header = HEADER.pack(MAGIC, VERSION, bytes.fromhex(key_id(key)), salt, chunk_bytes)
        self._cipher = _cipher(key, salt)
        self._number = 0
        self._finished = False
        self.chunk_bytes = chunk_bytes
        self.bytes_written = len(self._header)
        out.write(self._header)

    def write_chunk(self, data: bytes, *, final: bool = False) -> None:
        if self._finished:
            raise ValueError("the final chunk is written already")
        if len(data) > self.chunk_bytes:
            raise ValueError("chunk larger than the header allows")
        flags = FINAL if final else 0
        nonce = os.urandom(12)
        sealed = self._cipher.encrypt(nonce, data, _aad(self._header, self._number, flags))
        self._out.write(FRAME.pack(flags, len(sealed), nonce))
        self._out.write(sealed)
        self.bytes_written += FRAME.size + len(sealed)
        self._number += 1
        self._finished = final


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of ``source`` (pipes may answer short reads)."""
    parts, wanted = [], size
    while wanted:
        part = source.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


def encrypt_stream(out: BinaryIO, key: bytes, manifest: bytes, source: BinaryIO, *,
                   chunk_bytes: int = CHUNK_BYTES, before_final=None, progress=None) -> int:
    """Write the file: ``manifest`` as chunk 0, then ``source`` to its end; the plaintext bytes of ``source``.

    One chunk is read ahead, so the final chunk is the one holding the source's last bytes. At the end of
    ``source``, ``before_final()`` may still raise (the program writing it failed): the file then has no
    final chunk, and no reader takes it for a whole backup.
    """
    writer = Writer(out, key, chunk_bytes)
    if len(manifest) > chunk_bytes:
        raise ValueError("manifest larger than a chunk")
    writer.write_chunk(manifest)
    total = 0
    pending = _read_exactly(source, chunk_bytes)
    while True:
        following = _read_exactly(source, chunk_bytes)
        if not following and before_final:
            before_final()
        writer.write_chunk(pending, final=not following)
        total += len(pending)
        if progress:
            progress(total)
        if not following:
            return total
        pending = following


class Reader:
    """Reads and checks the header (``WrongKey`` before anything is decrypted); ``chunks`` then yields each
    chunk's plaintext once it authenticated, in order, and raises at the first problem."""

    def __init__(self, source: BinaryIO, key: bytes):
        self._source = source
        header = _read_exactly(source, HEADER.size)
        if len(header) < len(MAGIC) or header[:len(MAGIC)] != MAGIC:
            raise NotABackup("this is not a Sagip backup (no SAGIPBAK header)")
        if len(header) < HEADER.size:
            raise Truncated("the file ends inside its header: it was cut short")
        _, version, file_key_id, salt, chunk_bytes = HEADER.unpack(header)
        if version != VERSION:
            raise NotABackup(f"backup format version {version} is not one this service reads (it reads {VERSION})")
        self.key_id = file_key_id.hex()
        if not hmac.compare_digest(self.key_id, key_id(key)):
            raise WrongKey(f"this backup was made with another key (key id {self.key_id}; the key given has id "
                           f"{key_id(key)}), or its header was altered")
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise Corrupted("the header is damaged (chunk size out of range)")
        self._header = header
        self._cipher = _cipher(key, salt)
        self._chunk_bytes = chunk_bytes
        self.bytes_read = HEADER.size
        self.finished = False  # the final chunk was read

    def chunks(self) -> Iterator[bytes]:
        number = 0
        while True:
            frame = _read_exactly(self._source, FRAME.size)
            if not frame:
                raise Truncated(f"the file ends after chunk {number - 1} without its final chunk: it was cut short")
            if len(frame) < FRAME.size:
                raise Truncated(f"the file ends inside chunk {number}: it was cut short")
            flags, length, nonce = FRAME.unpack(frame)
            if not TAG_BYTES <= length <= self._chunk_bytes + TAG_BYTES:
                raise Corrupted(f"chunk {number} is damaged (impossible length)")
            sealed = _read_exactly(self._source, length)
            if len(sealed) < length:
                raise Truncated(f"the file ends inside chunk {number}: it was cut short")
            try:
                plain = self._cipher.decrypt(nonce, sealed, _aad(self._header, number, flags))
            except InvalidTag:
                raise Corrupted(f"chunk {number} fails authentication: the file was altered, or its chunks "
                                "reordered or mixed with another backup's") from None
            self.bytes_read += FRAME.size + length
            if flags & FINAL:
                if self._source.read(1):
                    raise Corrupted("data follows the final chunk: the file was altered")
                self.finished = True
                yield plain
                return
            yield plain
            number += 1
