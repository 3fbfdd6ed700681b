"""The roster's COPYs (registry/rosters/build.py). The read: ``copy_out`` reads a COPY from libpq directly; it
must give what psycopg's ``Copy`` gives and fail as psycopg fails (the job runner tells a lost database from a
real error by psycopg's classes); its rows ordered as the ids' bytes sort. The write: every entry once, sent in
chunks by two connections."""
from __future__ import annotations

import threading

import psycopg
import pytest

from registry.extensions import database_unreachable
from registry.rosters.build import copy_out
from tests.conftest import owner_connection

ROWS = "COPY (SELECT g, md5(g::text), g * 0.5 FROM generate_series(1, 20000) g) TO STDOUT"


def _psycopg_copy(conn, statement: str) -> bytes:
    data = bytearray()
    with conn.cursor().copy(statement) as copy:
        for block in copy:
            data += block
    return bytes(data)


@pytest.mark.parametrize("statement", [ROWS, ROWS + " (FORMAT BINARY)",
                                       "COPY (SELECT 1 WHERE false) TO STDOUT"])
def test_copy_out_gives_the_bytes_psycopg_gives(db, statement):
    with owner_connection() as conn:
        expected = _psycopg_copy(conn, statement)
        assert bytes(copy_out(conn, statement)) == expected
        assert conn.execute("SELECT 42").fetchone() == (42,)  # the connection as a finished statement leaves it
    if statement == ROWS:
        assert len(expected.splitlines()) == 20000


@pytest.mark.parametrize("statement, error", [
    ("COPY (SELECT 1 / (g - 5000) FROM generate_series(1, 10000) g) TO STDOUT", psycopg.errors.DivisionByZero),
    ("COPY (SELECT * FROM no_such_table) TO STDOUT", psycopg.errors.UndefinedTable),
    ("SELECT 1", psycopg.DatabaseError),
])
def test_copy_out_raises_psycopgs_error_and_leaves_the_connection_usable(db, statement, error):
    with owner_connection() as conn:
        with pytest.raises(error) as raised:
            copy_out(conn, statement)
        assert not database_unreachable(raised.value)
        conn.rollback()
        assert conn.execute("SELECT 42").fetchone() == (42,)


def test_a_server_gone_mid_copy_is_the_database_going_away(db):
    """A backend ended mid-read (as a restart ends it) raises what the runner retries, not a real failure."""
    with owner_connection() as conn, owner_connection() as killer:
        pid = conn.info.backend_pid

        def kill():
            killer.execute("SELECT pg_sleep(0.3)")
            killer.execute("SELECT pg_terminate_backend(%s)", (pid,))

        thread = threading.Thread(target=kill)
        thread.start()
        with pytest.raises(psycopg.OperationalError) as raised:
            copy_out(conn, "COPY (SELECT g, pg_sleep(0.001) FROM generate_series(1, 100000) g) TO STDOUT")
        thread.join()
        assert database_unreachable(raised.value)


def test_entries_written_in_chunks_by_two_connections_are_every_entry_once(db, monkeypatch):
    """``write_entries`` cuts a large roster into two ranges (two connections) sent a chunk at a time from
    reused buffers: small sizes here put many chunk edges, both streams and every kind of record in play;
    what the table holds afterwards is each member's entry, field for field."""
    import uuid

    import numpy as np

    from registry.auth import scope
    from registry.rosters import build
    from registry.rosters.assign import Assignment, REASON_CODES

    monkeypatch.setattr(build, "CHUNK_ROWS", 97)
    monkeypatch.setattr(build, "PARALLEL_FROM_ROWS", 500)
    rng = np.random.default_rng(7)
    n, points = 2_000, [uuid.uuid4() for _ in range(3)]
    ids = np.zeros(n, dtype=[("national_id", "V16"), ("household_id", "V16")])
    ids["national_id"] = [np.void(uuid.uuid4().bytes) for _ in range(n)]
    point = rng.integers(-1, len(points), n)
    placed = point >= 0
    reason = np.where(placed, 0, rng.choice(list(REASON_CODES.values()), n)).astype(np.int16)
    result = Assignment(point=point, vehicle=np.where(placed, rng.integers(1, 9, n), 0),
                        seat=np.where(placed, rng.integers(1, 40, n), 0),
                        distance_to_point_km=np.where(placed, rng.random(n) * 100, np.nan), reason=reason,
                        rank=rng.permutation(n), priority=rng.integers(1, 5, n).astype(np.int16),
                        assigned_per_point=np.zeros(3, np.int64), vehicles_per_point=np.zeros(3, np.int64))
    roster_id = uuid.uuid4()
    build.write_entries(db.engine, scope.everything_statement(), roster_id, ids["national_id"], result, points)

    with owner_connection() as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT national_id, priority, rank, assembly_point_id, vehicle, seat, distance_to_point_km, "
            "unassigned_reason FROM roster_entries WHERE roster_id = %s", (roster_id,))}
    assert len(rows) == n
    reasons = {code: name for name, code in REASON_CODES.items()}
    for i in range(n):
        got = rows[uuid.UUID(bytes=ids["national_id"][i].tobytes())]
        if placed[i]:
            expected = (int(result.priority[i]), int(result.rank[i]), points[point[i]], int(result.vehicle[i]),
                        int(result.seat[i]), round(float(result.distance_to_point_km[i]), 3), None)
        else:
            expected = (int(result.priority[i]), int(result.rank[i]), None, None, None, None, reasons[int(reason[i])])
        assert got == expected, i


@pytest.mark.parametrize("ids", ["random", "nationals sharing their first half", "households sharing their first half"])
def test_the_reads_orders_are_the_ids_byte_orders(monkeypatch, ids):
    """``_orders`` on COPYed records: by national id, and by household then national id, as the ids' bytes
    sort (the two sorts in threads here; ids sharing their first 8 bytes take the slow, exact path)."""
    import uuid

    import numpy as np

    from registry.rosters import assign, build

    monkeypatch.setattr(assign, "PARALLEL_FROM", 10)
    rng = np.random.default_rng(3)
    n = 3000
    household_of = np.repeat(np.arange(n), rng.integers(1, 5, n))[:n]
    households = [uuid.UUID(bytes=rng.bytes(16)).bytes for _ in range(n)]
    nationals = [rng.bytes(16) for _ in range(n)]
    if ids == "nationals sharing their first half":
        nationals[1::2] = [nationals[i][:8] + rng.bytes(8) for i in range(0, n - 1, 2)]
    if ids == "households sharing their first half":
        households[1::2] = [households[i][:8] + rng.bytes(8) for i in range(0, n - 1, 2)]
    rows = np.zeros(n, dtype=build._MEMBER)
    rows["national_id"] = [np.void(b) for b in nationals]
    rows["household_id"] = [np.void(households[h]) for h in household_of]
    rows = rows[rng.permutation(n)]  # as a sequential scan gives them: in no order
    by_household, by_national = build._orders(rows)
    national_bytes = [bytes(v) for v in rows["national_id"]]
    household_bytes = [bytes(v) for v in rows["household_id"]]
    assert by_national.tolist() == sorted(range(n), key=lambda i: national_bytes[i])
    assert by_household.tolist() == sorted(range(n), key=lambda i: (household_bytes[i], national_bytes[i]))
