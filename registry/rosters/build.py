"""Building a roster on a worker: read the run's nationals from PostGIS, assign them, write the entries back.

Both directions use binary COPY with fixed-width records, read and written by
numpy as whole arrays, with no Python object per row: the read takes the COPY's
messages from libpq directly (``copy_out``), the write sends the entries a chunk
at a time on two connections while the server parses the last. The assignment
itself is ``registry.rosters.assign``. At 10M exposed the whole path is 1.13-1.16x
a bare COPY out, KD-tree and COPY into a keyed table (bench/roster.py).
"""
from __future__ import annotations

import select as _select
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import numpy as np
import psycopg
from psycopg import pq, sql
from sqlalchemy import delete, select, text

from registry.auth import scope
from registry.errors import NotFound
from registry.extensions import db
from registry.jobs import services as jobs
from registry.rosters import assign
from registry.rosters.models import UNASSIGNED_REASONS, Roster, RosterEntry, RosterPoint

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"

# One table: the run's rows carry the household and priority class as of the run (exposure.PRIORITY_SQL).
# No ORDER BY: numpy groups the households (a sort in PostgreSQL costs more than the whole read). A member
# is located when the place is better than the country's: the others' coordinates are read as NaN.
_MEMBERS_SQL = sql.SQL("""
COPY (
    SELECT e.national_id, e.household_id, e.priority,
           (CASE WHEN e.zone = 'inside' THEN -1 ELSE e.ring_km END)::float8, e.distance_km::float8,
           coalesce(CASE WHEN e.certainty <> 'country_only' THEN ST_X(e.location) END, 'NaN')::float8,
           coalesce(CASE WHEN e.certainty <> 'country_only' THEN ST_Y(e.location) END, 'NaN')::float8
    FROM exposures e
    WHERE e.run_id = {run_id} AND e.zone = ANY({zones}) AND e.certainty = ANY({certainties})
      AND (e.zone = 'inside' OR {max_ring_km}::float8 IS NULL OR e.ring_km <= {max_ring_km}::float8)
) TO STDOUT (FORMAT BINARY)""")


def _record(*fields: tuple[str, str]) -> np.dtype:
    """A binary COPY tuple of non-null fixed-width fields: field count, then (length, value) per field."""
    spec = [("count", ">i2")]
    for name, kind in fields:
        spec += [(f"{name}_len", ">i4"), (name, kind)]
    return np.dtype(spec)


_MEMBER = _record(("national_id", "V16"), ("household_id", "V16"), ("priority", ">i2"), ("zone_rank", ">f8"),
                  ("distance_km", ">f8"), ("lon", ">f8"), ("lat", ">f8"))
_ENTRY_COLUMNS = ("roster_id", "national_id", "priority", "rank", "assembly_point_id", "vehicle",
                  "seat", "distance_to_point_km", "unassigned_reason")
_COPY_ENTRIES = (f"COPY roster_entries ({', '.join(_ENTRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)")


def read_members(cursor, run_id: uuid.UUID, params: dict) -> tuple[np.ndarray, assign.Members, np.ndarray]:
    """(the national ids by national id, as 16-byte values; the members for ``assign``, a household's
    consecutive and in national id order; the members' order by national id) of the roster's chosen rows."""
    statement = _MEMBERS_SQL.format(
        run_id=sql.Literal(str(run_id)), zones=sql.Literal(list(params["zones"])),
        certainties=sql.Literal(list(params["certainties"])), max_ring_km=sql.Literal(params.get("max_ring_km")))
    data = copy_out(cursor.connection, statement.as_string(cursor.connection))
    body = memoryview(data)[len(_SIGNATURE):len(data) - len(_TRAILER)] if len(data) > len(_SIGNATURE) else b""
    rows = np.frombuffer(body, dtype=_MEMBER)
    by_household, by_national = _orders(rows)
    # by_national orders the rows as read; the same rows as members are where by_household put them.
    member_of_row = np.empty(len(rows), dtype=np.int64)
    member_of_row[by_household] = np.arange(len(rows))
    # Each column gathered on its own (in threads: numpy's gathers release the GIL), not whole records.
    gathers = {"household_key": lambda: _household_keys(rows, by_household),
               "priority": lambda: rows["priority"][by_household].astype(np.int16),
               "national_ids": lambda: rows["national_id"][by_national],
               "order": lambda: member_of_row[by_national]}
    gathers.update({name: (lambda name=name: rows[name][by_household].astype(np.float64))
                    for name in ("zone_rank", "distance_km", "lon", "lat")})
    with ThreadPoolExecutor(max_workers=assign.threads_for(len(rows)), thread_name_prefix="roster-read") as pool:
        got = dict(zip(gathers, pool.map(lambda gather: gather(), gathers.values())))
    members = assign.Members(
        household_key=got["household_key"], priority=got["priority"], zone_rank=got["zone_rank"],
        distance_km=got["distance_km"], lon=got["lon"], lat=got["lat"],
        located=~np.isnan(got["lon"]) & ~np.isnan(got["lat"]))
    return got["national_ids"], members, got["order"]


def copy_out(connection: psycopg.Connection, statement: str) -> bytearray:
    """The whole output of a ``COPY … TO STDOUT``, read from libpq directly (``connection.pgconn``).

    A COPY sends one message per row. psycopg's ``Copy`` hands each to Python through its generator
    and wait machinery, about 1.3 µs a row, so at 10M rows the client, not the server, set the pace;
    here a loop takes every message libpq already holds and waits on the socket only when it has none
    (0.9-1.0 s against 1.2-2.1 s for 1M rows of the roster's read, alternating). Errors are psycopg's own
    classes (a lost server is an ``OperationalError``, as ``registry.jobs.runner`` expects), and every
    result is consumed, so psycopg finds the connection as a finished statement leaves it.
    """
    pgconn = connection.pgconn
    pgconn.send_query(statement.encode(connection.info.encoding))
    while pgconn.flush():
        _select.select([], [pgconn.socket], [])
    first = _next_result(pgconn)
    if first is None or first.status != pq.ExecStatus.COPY_OUT:
        _raise_for(pgconn, first, connection)
    data = bytearray()
    get = pgconn.get_copy_data
    while True:
        size, block = get(1)
        if size > 0:
            data += block
        elif size == 0:  # nothing received yet: wait for the socket
            _select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        elif size == -1:  # the end of the COPY: its result follows
            break
        else:
            raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))
    _raise_for(pgconn, _next_result(pgconn), connection, ok=pq.ExecStatus.COMMAND_OK)
    return data


def _next_result(pgconn):
    while pgconn.is_busy():
        _select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    return pgconn.get_result()


def _raise_for(pgconn, result, connection, ok=None) -> None:
    """Consume the results left; raise psycopg's error for ``result`` unless it is ``ok``."""
    while _next_result(pgconn) is not None:
        pass
    if result is not None and ok is not None and result.status == ok:
        return
    if result is None:
        raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace") or "the COPY returned no result")
    raise psycopg.errors.error_from_result(result, encoding=connection.info.encoding)


# The ids' halves as big-endian integers, read in place from the COPYed records (a view, no copy): an id's
# first 8 bytes as an unsigned integer sort as the id's bytes do.
_ID_HALVES = np.dtype({
    "names": ["national_high", "national_low", "household_high", "household_low"], "formats": [">u8"] * 4,
    "offsets": [_MEMBER.fields["national_id"][1], _MEMBER.fields["national_id"][1] + 8,
                _MEMBER.fields["household_id"][1], _MEMBER.fields["household_id"][1] + 8],
    "itemsize": _MEMBER.itemsize})


def _orders(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the permutation grouping rows by household, then national id; the one sorting them by national id).

    Ids sort as their bytes; both sorts are of the ids' first 8 bytes as integers (four times faster than
    sorting the 16-byte values), and run at once, in two threads: the rows by national, and by household
    with their members in no particular order yet. Members are then put in national order within their
    household by one more sort, on (household's place, national's place): a nearly sorted array, which
    numpy's stable sort (timsort) takes in about one pass. Two ids sharing their first 8 bytes (never seen
    with random ids, but possible) make them sort all 16 bytes instead.
    """
    halves = rows.view(_ID_HALVES)
    national, household = halves["national_high"].astype(np.uint64), halves["household_high"].astype(np.uint64)
    with ThreadPoolExecutor(max_workers=min(2, assign.threads_for(len(rows))),
                            thread_name_prefix="roster-sort") as pool:
        by_national = pool.submit(np.argsort, national)
        grouped = np.argsort(household)
        by_national = by_national.result()
    if _ties(national, halves["national_low"], by_national):
        by_national = _byte_order(rows["national_id"])
    if not len(rows):
        return grouped, by_national
    # A household is a run of equal ids (both halves) in ``grouped``; two households sharing their first
    # half show as two runs next to each other with the same first half.
    high, low = household[grouped], halves["household_low"][grouped]
    boundary = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
    starts = np.flatnonzero(np.r_[True, boundary])
    if bool((high[starts[1:]] == high[starts[:-1]]).any()):
        return _byte_order(rows["household_id"], rows["national_id"]), by_national
    place = np.empty(len(rows), dtype=np.int64)
    place[by_national] = np.arange(len(rows))
    group = np.cumsum(np.r_[False, boundary], dtype=np.int64)
    return grouped[np.argsort(group * len(rows) + place[grouped], kind="stable")], by_national


def _ties(high: np.ndarray, low: np.ndarray, order: np.ndarray) -> bool:
    """Whether two different ids (halves ``high`` and ``low``), next to each other in this order, share
    their first half."""
    first = high[order]
    same = np.flatnonzero(first[1:] == first[:-1])
    return bool(len(same)) and bool((low[order[same]] != low[order[same + 1]]).any())


def _byte_order(*columns: np.ndarray) -> np.ndarray:
    """The permutation sorting rows by the bytes of these 16-byte columns (ids sort as their bytes)."""
    joined = np.empty((len(columns[0]), 16 * len(columns)), dtype=np.uint8)
    for i, column in enumerate(columns):
        joined[:, 16 * i:16 * (i + 1)] = np.frombuffer(np.ascontiguousarray(column).tobytes(), np.uint8).reshape(-1, 16)
    return np.argsort(joined.view(f"S{16 * len(columns)}").ravel(), kind="stable")


def _household_keys(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The household ids of ``rows[order]`` as (n, 2) unsigned integers that sort like the ids."""
    halves = rows.view(_ID_HALVES)
    keys = np.empty((len(order), 2), dtype=np.uint64)
    keys[:, 0] = halves["household_high"][order]
    keys[:, 1] = halves["household_low"][order]
    return keys


PARALLEL_FROM_ROWS = 100_000
CHUNK_ROWS = 65_536  # rows built and sent at a time: about 6 MB, reused (see write_entries)


def write_entries(engine, scope: tuple, roster_id: uuid.UUID, national_ids: np.ndarray, result: assign.Assignment,
                  point_ids: list[uuid.UUID]) -> None:
    """COPY one entry per member, committed on connections of their own (see ``build``): ``national_ids``
    (16-byte values) and ``result``'s per-member arrays in the same order, the order they are written in.

    Rows go in national id order, so the primary key grows at its right edge (half the time of random
    order); a large roster is cut into two ranges of ids written by two connections at once (PostgreSQL
    parses and indexes them on two cores; the ranges touch different parts of the index). ``scope`` is
    the (statement, parameters) that gives those transactions the service's scope and role.

    Each range is built and sent CHUNK_ROWS at a time, in one buffer per kind of record that is reused:
    the fields every record shares (counts, lengths, the roster id) are written once, and the server
    parses one chunk while the next is gathered. Building every record first (a gigabyte at 10M rows,
    and its copy as bytes) kept PostgreSQL idle for seconds, most of them the kernel handing out pages.
    """
    per_member = ("point", "vehicle", "seat", "distance_to_point_km", "reason", "rank", "priority")
    columns = {name: getattr(result, name) for name in per_member}
    point_bytes = np.array([p.bytes for p in point_ids] or [b"\x00" * 16], dtype="V16")
    streams = 2 if len(national_ids) >= PARALLEL_FROM_ROWS else 1
    bounds = np.linspace(0, len(national_ids), streams + 1).astype(int)

    def write_range(lo: int, hi: int) -> None:
        records = _Records(roster_id, min(CHUNK_ROWS, max(hi - lo, 1)))
        with engine.begin() as connection:
            connection.execute(*scope)
            cursor = connection.connection.driver_connection.cursor()
            with cursor.copy(_COPY_ENTRIES) as copy:
                copy.write(_SIGNATURE)
                for start in range(lo, hi, CHUNK_ROWS):
                    chunk = slice(start, min(start + CHUNK_ROWS, hi))
                    for block in records.blocks(national_ids[chunk],
                                                {name: column[chunk] for name, column in columns.items()},
                                                point_bytes):
                        copy.write(block)
                copy.write(_TRAILER)

    if streams == 1:
        write_range(0, len(national_ids))
        return
    with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="roster-copy") as pool:
        for done in [pool.submit(write_range, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
            done.result()


class _Records:
    """Binary COPY records of one roster, a chunk at a time: the placed in one block, the others in one
    block per reason. Blocks are views of buffers kept across chunks: one is sent before the next is built."""

    def __init__(self, roster_id: uuid.UUID, rows: int):
        self.placed = np.zeros(rows, dtype=_ENTRY_PLACED)
        _constant(self.placed, roster_id)
        for name in ("assembly_point_id", "vehicle", "seat", "distance_to_point_km"):
            self.placed[f"{name}_len"] = self.placed.dtype[name].itemsize
        self.placed["unassigned_reason_len"] = -1
        self.unplaced = {}
        for code, reason in enumerate(UNASSIGNED_REASONS, start=1):
            block = np.zeros(rows, dtype=_entry_unplaced(len(reason)))
            _constant(block, roster_id)
            for name in ("assembly_point_id", "vehicle", "seat", "distance_to_point_km"):
                block[f"{name}_len"] = -1
            _set(block, "unassigned_reason", reason.encode())
            self.unplaced[code] = block

    def blocks(self, national_ids: np.ndarray, columns: dict, point_bytes: np.ndarray):
        placed = columns["point"] >= 0
        count = int(placed.sum())
        if count:
            block = self.placed[:count]
            _variable(block, national_ids, columns, placed)
            block["assembly_point_id"] = point_bytes[columns["point"][placed]]
            block["vehicle"] = columns["vehicle"][placed]
            block["seat"] = columns["seat"][placed]
            block["distance_to_point_km"] = np.round(columns["distance_to_point_km"][placed], 3)
            yield block.view(np.uint8).data
        for code, buffer in self.unplaced.items():
            chosen = columns["reason"] == code
            count = int(chosen.sum())
            if count:
                block = buffer[:count]
                _variable(block, national_ids, columns, chosen)
                yield block.view(np.uint8).data


_ENTRY_PLACED = np.dtype([("count", ">i2"), ("roster_id_len", ">i4"), ("roster_id", "V16"),
                          ("national_id_len", ">i4"), ("national_id", "V16"),
                          ("priority_len", ">i4"), ("priority", ">i2"), ("rank_len", ">i4"), ("rank", ">i4"),
                          ("assembly_point_id_len", ">i4"), ("assembly_point_id", "V16"),
                          ("vehicle_len", ">i4"), ("vehicle", ">i4"), ("seat_len", ">i4"), ("seat", ">i4"),
                          ("distance_to_point_km_len", ">i4"), ("distance_to_point_km", ">f8"),
                          ("unassigned_reason_len", ">i4")])


def _entry_unplaced(reason_length: int) -> np.dtype:
    return np.dtype([("count", ">i2"), ("roster_id_len", ">i4"), ("roster_id", "V16"),
                     ("national_id_len", ">i4"), ("national_id", "V16"),
                     ("priority_len", ">i4"), ("priority", ">i2"), ("rank_len", ">i4"), ("rank", ">i4"),
                     ("assembly_point_id_len", ">i4"), ("vehicle_len", ">i4"), ("seat_len", ">i4"),
                     ("distance_to_point_km_len", ">i4"),
                     ("unassigned_reason_len", ">i4"), ("unassigned_reason", f"S{reason_length}")])


def _set(block: np.ndarray, name: str, values) -> None:
    block[name] = values
    block[f"{name}_len"] = block.dtype[name].itemsize


def _constant(block, roster_id: uuid.UUID) -> None:
    """What every record of the roster shares: the field count, the roster id, the lengths."""
    block["count"] = len(_ENTRY_COLUMNS)
    _set(block, "roster_id", np.void(roster_id.bytes))
    for name in ("national_id", "priority", "rank"):
        block[f"{name}_len"] = block.dtype[name].itemsize


def _variable(block, national_ids, columns: dict, chosen) -> None:
    block["national_id"] = national_ids[chosen]
    block["priority"] = columns["priority"][chosen]
    block["rank"] = columns["rank"][chosen]


# ---------------------------------------------------------------------- the task's work

_POINTS_SQL = text("""
SELECT id, name, kind, country, ST_X(location) AS lon, ST_Y(location) AS lat, capacity
FROM assembly_points WHERE id = ANY(:ids) ORDER BY id
""")
# The points as the assignment saw them, in one statement (the place is the point's: it is not read back).
_ROSTER_POINTS_SQL = text("""
INSERT INTO roster_points (roster_id, assembly_point_id, name, kind, country, location, capacity, position,
                           assigned, vehicles)
SELECT :roster_id, v.id, v.name, v.kind, v.country, p.location, v.capacity, v.position, v.assigned, v.vehicles
FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:kinds AS text[]), CAST(:countries AS text[]),
            CAST(:capacities AS int[]), CAST(:positions AS int[]), CAST(:assigned AS int[]),
            CAST(:vehicles AS int[])) AS v(id, name, kind, country, capacity, position, assigned, vehicles)
JOIN assembly_points p ON p.id = v.id
""")


def build(job) -> dict:
    """The task's work: the roster's entries, points and counts (the caller commits). Rerunnable."""
    roster = db.session.get(Roster, uuid.UUID(job.params["roster_id"]))
    if roster is None:
        raise NotFound("The roster is gone (its crisis was deleted).")
    params = roster.params
    roster.status = "running"
    # The entries are written and committed on connections of their own (two at once for a large roster,
    # write_entries) before this transaction marks the roster succeeded: readers only read
    # succeeded rosters, and a rerun (or a failure, ``mark_failed``) first deletes what an attempt left.
    with db.engine.begin() as connection:
        connection.execute(*scope.everything_statement())
        connection.execute(delete(RosterEntry).where(RosterEntry.roster_id == roster.id))
    db.session.execute(text("SET LOCAL work_mem = '256MB'"))
    db.session.execute(text("SET LOCAL jit = off"))
    db.session.execute(delete(RosterPoint).where(RosterPoint.roster_id == roster.id))
    points = db.session.execute(_POINTS_SQL, {"ids": [uuid.UUID(p) for p in params["assembly_point_ids"]]}).all()
    cursor = db.session.connection().connection.driver_connection.cursor()
    started = time.perf_counter()
    national_ids, members, by_national = read_members(cursor, roster.run_id, params)
    read_s = time.perf_counter() - started
    jobs.set_progress(job.id, 0.3)
    started = time.perf_counter()
    # Per-member results come out in national id order: the order the entries are written in.
    result = assign.assign(members, assign.Points(
        lon=np.array([p.lon for p in points], dtype=np.float64), lat=np.array([p.lat for p in points], dtype=np.float64),
        capacity=np.array([p.capacity for p in points], dtype=np.int64)),
        vehicle_capacity=params["vehicle_capacity"], max_distance_km=params["max_distance_km"],
        output_order=by_national)
    assign_s = time.perf_counter() - started
    jobs.set_progress(job.id, 0.6)
    started = time.perf_counter()
    write_entries(db.engine, scope.everything_statement(), roster.id, national_ids, result, [p.id for p in points])
    write_s = time.perf_counter() - started
    by_name = sorted(range(len(points)), key=lambda i: (points[i].name.casefold(), str(points[i].id)))
    position = {index: place for place, index in enumerate(by_name)}
    if points:
        db.session.execute(_ROSTER_POINTS_SQL, {
            "roster_id": roster.id, "ids": [p.id for p in points], "names": [p.name for p in points],
            "kinds": [p.kind for p in points], "countries": [p.country for p in points],
            "capacities": [p.capacity for p in points], "positions": [position[i] for i in range(len(points))],
            "assigned": result.assigned_per_point.tolist(), "vehicles": result.vehicles_per_point.tolist()})
    reasons = np.bincount(result.reason, minlength=len(UNASSIGNED_REASONS) + 1)
    counts = {"assigned": int((result.point >= 0).sum()), "unassigned": int((result.point < 0).sum()),
              "by_reason": {reason: int(reasons[code]) for code, reason in enumerate(UNASSIGNED_REASONS, start=1)
                            if reasons[code]},
              "vehicles": int(result.vehicles_per_point.sum())}
    roster.status, roster.counts, roster.finished_at = "succeeded", counts, datetime.now(timezone.utc)
    jobs.finish(job.id, {"roster_id": str(roster.id), "counts": counts, "seconds": {
        "read": round(read_s, 3), "assign": round(assign_s, 3), "write": round(write_s, 3)}})
    return counts


def mark_failed(job_id: uuid.UUID) -> None:
    """The roster of a failed job: failed, and without the entries an attempt may have committed."""
    failed = select(Roster.id).where(Roster.job_id == job_id).scalar_subquery()
    db.session.execute(delete(RosterEntry).where(RosterEntry.roster_id == failed))
    db.session.execute(Roster.__table__.update().where(Roster.job_id == job_id).values(status="failed"))


