"""Opaque cursors for the list shape ``{items, total, next_cursor}``."""
from __future__ import annotations

import base64
import json

from registry.errors import BadRequest


def encode_cursor(*values) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid() -> BadRequest:
    return BadRequest("The cursor is not valid; use next_cursor from a previous page.",
                      errors={"cursor": ["Not a cursor issued by this service."]})


def decode_cursor(cursor: str, size: int) -> list[str]:
    """:raises BadRequest: the cursor was not made by this service."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != size or not all(isinstance(v, str) for v in values):
            raise ValueError
    except ValueError:
        raise _invalid() from None
    return values


def decode_keys(cursor: str, *parsers) -> list:
    """The keyset values of a cursor, each through its parser (e.g. ``float``, ``uuid.UUID``).

    :raises BadRequest: the cursor was not made by this service.
    """
    values = decode_cursor(cursor, len(parsers))
    try:
        return [parse(value) for parse, value in zip(parsers, values)]
    except ValueError:
        raise _invalid() from None


def decode_offset(cursor: str | None) -> int:
    """The offset carried by a cursor of an offset-paged list (search results)."""
    if not cursor:
        return 0
    value = decode_cursor(cursor, 1)[0]
    if not value.isdigit():
        raise _invalid()
    return int(value)
