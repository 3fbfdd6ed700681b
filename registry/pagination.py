"""Opaque cursors for the list shape ``{items, total, next_cursor}``."""
from __future__ import annotations

import base64
import json

from registry.errors import BadRequest


def encode_cursor(*values) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    """:raises BadRequest: the cursor was not made by this service."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != size or not all(isinstance(v, str) for v in values):
            raise ValueError
    except ValueError:
        raise BadRequest("The cursor is not valid; use next_cursor from a previous page.",
                         errors={"cursor": ["Not a cursor issued by this service."]}) from None
    return values


def decode_offset(cursor: str | None) -> int:
    """The offset carried by a cursor of an offset-paged list (search results)."""
    if not cursor:
        return 0
    value = decode_cursor(cursor, 1)[0]
    if not value.isdigit():
        raise BadRequest("The cursor is not valid; use next_cursor from a previous page.",
                         errors={"cursor": ["Not a cursor issued by this service."]})
    return int(value)
