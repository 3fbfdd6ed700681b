"""Stocks and flows (SPEC §11): counted in PostgreSQL, suppressed here, answered as cells and totals.

Counting goes through the aggregate functions of migration 0021
(``statistics_stocks``, ``statistics_flows``): one ``GROUP BY`` where the data
live, returning counts and never a row of a person. Jurisdiction is applied
twice, as everywhere: the caller's ``Reach`` as the function's ``countries``,
and the session's scope inside the function. Disclosure control is
``registry.statistics.suppression``.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from flask import current_app
from sqlalchemy import text

from registry.auth.reach import Reach
from registry.errors import Unprocessable
from registry.extensions import db
from registry.statistics.suppression import METHOD, Table, suppress

# The dimensions a table may have (the functions of migration 0021 compute them; a test checks the two agree).
DIMENSIONS = ("host_country", "region", "sex", "age_band", "occupation", "occupation_submajor", "sector", "legal_status",
              "status")
FLOW_KINDS = ("departures", "returns", "repatriations")
MAX_DIMENSIONS = 3


def today() -> date:
    return datetime.now(timezone.utc).date()


def parse_dimensions(by: str | None, *, allowed=DIMENSIONS, most: int = MAX_DIMENSIONS) -> list[str]:
    """``by`` (comma-separated) as a list of distinct dimensions. :raises Unprocessable: naming the field."""
    names = [n.strip() for n in (by or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise Unprocessable("Unknown dimension.", errors={"by": [
            f"Unknown dimension {unknown[0]!r}; choose up to {most} of: {', '.join(allowed)}."]})
    if len(set(names)) != len(names):
        raise Unprocessable("A dimension is given twice.", errors={"by": ["Give each dimension once."]})
    if len(names) > most:
        raise Unprocessable("Too many dimensions.", errors={"by": [f"At most {most} dimensions."]})
    return names


def stocks(user, dimensions: list[str], day: date) -> dict:
    """Nationals abroad at the end of ``day`` by ``dimensions`` (SPEC §11), suppressed. ``user`` is the caller,
    or the ``Reach`` a job or the command line acts with (``reach_of``)."""
    return stocks_answer(dimensions, stock_counts(user, dimensions, day), day)


def stock_counts(user, dimensions: list[str], day: date) -> dict[tuple, int]:
    """The counts behind ``stocks``, not yet suppressed: for a caller that sums them into smaller tables and
    answers each through ``stocks_answer`` (the profile report: one count, many tables); never published as
    they are."""
    if day > today():
        raise Unprocessable("The date is in the future.", errors={"at": ["A day not after today (UTC)."]})
    rows = db.session.execute(text("SELECT c1, c2, c3, people FROM statistics_stocks(:day, :dims, :countries)"),
                              {"day": day, "dims": dimensions, "countries": _countries(user)}).all()
    return {tuple(row[:len(dimensions)]): int(row.people) for row in rows}


def stocks_answer(dimensions: list[str], inner: dict[tuple, int], day: date) -> dict:
    """The answer of ``stocks`` from its counts: suppressed."""
    answer = _answer(dimensions, inner)
    answer["at"] = day.isoformat()
    return answer


def flows(user, kind: str, dimensions: list[str], first: date, last: date) -> dict:
    """Departures, returns or repatriations by month (and up to two more dimensions), suppressed. ``user`` as
    for ``stocks``."""
    if last < first:
        raise Unprocessable("The period ends before it begins.", errors={"to": ["A day on or after `from`."]})
    rows = db.session.execute(
        text("SELECT month, c1, c2, people FROM statistics_flows(:kind, :first, :last, :dims, :countries)"),
        {"kind": kind, "first": first, "last": last, "dims": dimensions, "countries": _countries(user)}).all()
    inner = {(row.month, *row[1:1 + len(dimensions)]): int(row.people) for row in rows}
    answer = _answer(["month", *dimensions], inner)
    answer.update({"kind": kind, "from": first.isoformat(), "to": last.isoformat()})
    return answer


def reach_of(user) -> Reach:
    """Whose nationals ``user``'s statistics count: an analyst's every country (counts, never a record: SPEC
    §11), an embassy officer's their jurisdiction, as everywhere else."""
    if user.role == "analyst":
        return Reach.everywhere()
    return Reach.of(user)


def _countries(who) -> list[str] | None:
    return (who if isinstance(who, Reach) else reach_of(who)).to_params()


def _answer(dimensions: list[str], inner: dict) -> dict:
    threshold = current_app.config["REGISTRY_STATS_MIN_CELL"]
    table = suppress(dimensions, inner, threshold) if dimensions else _grand_total(inner, threshold)
    return {"dimensions": dimensions, "cells": [_cell(table, k) for k in sorted(table.inner, key=_order)],
            "totals": [_cell(table, k) for k in sorted(table.margins, key=_order)
                       if table.margins[k] or k in table.suppressed],
            "suppression": {"threshold": threshold, "method": METHOD.format(low=threshold - 1),
                            "suppressed_cells": len(table.suppressed)}}


def _grand_total(inner: dict, threshold: int) -> Table:
    """A table of no dimension: its one number, suppressed when small."""
    total = sum(inner.values())
    table = Table((), {}, {(): total})
    if 0 < total < threshold:
        table.suppressed, table.primary = {()}, {()}
    return table


def _order(key):
    return tuple((c is None, str(c)) for c in key)


def _cell(table: Table, key) -> dict:
    cell = dict(zip(table.dimensions, key))
    hidden = key in table.suppressed
    cell.update({"count": None if hidden else table.value(key), "suppressed": hidden})
    if hidden:  # small itself (primary), or hidden so that a small one cannot be worked out (secondary)
        cell["reason"] = "primary" if key in table.primary else "secondary"
    return cell
