"""The list shape ``{items, total, next_cursor}``: keyset pages, their opaque cursors, and their schemas.

``keyset_page`` serves every list ordered by a unique key (all columns
ascending, or all descending): the next page starts after the last row's key,
so a page costs the same at any depth and rows written meanwhile never shift
it. ``offset_page`` is for relevance-ordered results (search), where no such
key exists. ``page_schema`` builds the answer's schema for an item schema.
"""
from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import Select, func, tuple_

from registry.errors import BadRequest
from registry.extensions import db

BIGINT_MAX = 2 ** 63 - 1
MAX_OFFSET = 100_000


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
    except (ValueError, UnicodeDecodeError):
        raise _invalid() from None
    return values


# Parsers of cursor values: each refuses what the database could not compare (out of range, not finite).

def bigint(text: str) -> int:
    value = int(text)
    if not text.lstrip("-").isdigit() or abs(value) > BIGINT_MAX:
        raise ValueError("not a bigint")
    return value


def finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value


def decode_keys(cursor: str, *parsers: Callable[[str], Any]) -> list:
    """The keyset values of a cursor, each through its parser (e.g. ``finite``, ``uuid.UUID``).

    :raises BadRequest: the cursor was not made by this service.
    """
    values = decode_cursor(cursor, len(parsers))
    try:
        return [parse(value) for parse, value in zip(parsers, values)]
    except (ValueError, OverflowError):
        raise _invalid() from None


@dataclass(frozen=True)
class Keyset:
    """A unique ordering of a list: its columns, how to read a cursor's values back, and the direction."""

    columns: Sequence
    parsers: Sequence[Callable[[str], Any]]
    descending: bool = False

    def order_by(self) -> list:
        return [c.desc() for c in self.columns] if self.descending else list(self.columns)

    def after(self, values: list):
        key, start = tuple_(*self.columns), tuple_(*values)
        return key < start if self.descending else key > start


def count_of(query: Select) -> int:
    return db.session.scalar(query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None))


def keyset_page(query: Select, keyset: Keyset, *, limit: int, cursor: str | None, key: Callable[[Any], tuple],
                rows: Callable[[Select], list] | None = None, total: int | None = None) -> dict:
    """One page of ``query`` in ``keyset`` order after ``cursor``.

    ``key(item)`` gives an item's ordering values (for the next cursor); ``rows`` runs the statement (by
    default: its scalars); ``total`` may be given when the caller already counted.
    """
    total = count_of(query) if total is None else total
    if cursor:
        query = query.where(keyset.after(decode_keys(cursor, *keyset.parsers)))
    statement = query.order_by(*keyset.order_by()).limit(limit + 1)
    items = rows(statement) if rows is not None else list(db.session.scalars(statement))
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "total": total, "next_cursor": encode_cursor(*key(items[-1])) if more else None}


def decode_offset(cursor: str | None) -> int:
    """The offset carried by a cursor of an offset-paged list (search results)."""
    if not cursor:
        return 0
    (value,) = decode_keys(cursor, bigint)
    if not 0 <= value <= MAX_OFFSET:
        raise _invalid()
    return value


def offset_page(query: Select, order: Sequence, *, limit: int, cursor: str | None,
                rows: Callable[[Select], list] | None = None) -> dict:
    """One page of a relevance-ordered ``query`` (no unique key to continue from): offset cursors, capped
    at ``MAX_OFFSET`` rows deep."""
    total = count_of(query)
    offset = decode_offset(cursor)
    statement = query.order_by(*order).offset(offset).limit(limit + 1)
    items = rows(statement) if rows is not None else list(db.session.scalars(statement))
    more = len(items) > limit and offset + limit < MAX_OFFSET
    return {"items": items[:limit], "total": total, "next_cursor": encode_cursor(offset + limit) if more else None}


_PAGES: dict[type[Schema], type[Schema]] = {}


def page_schema(item: type[Schema], name: str | None = None) -> type[Schema]:
    """The schema of a page of ``item``: ``{items, total, next_cursor}`` (one class per item schema)."""
    page = _PAGES.get(item)
    if page is None:
        page = type(name or item.__name__.removesuffix("Out") + "Page", (Schema,), {
            "items": fields.List(fields.Nested(item), required=True),
            "total": fields.Integer(required=True, metadata={"description": "all matching items, every page"}),
            "next_cursor": fields.String(required=True, allow_none=True,
                                         metadata={"description": "pass as ?cursor= for the next page; null "
                                                                  "on the last"}),
            "__doc__": f"A page of {item.__name__}.",
        })
        _PAGES[item] = page
    return page
