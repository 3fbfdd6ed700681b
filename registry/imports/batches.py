"""Validating an import's rows in batches, in a pool of processes (REGISTRY_IMPORT_PROCESSES).

Validation is Python and holds the GIL: one process validates about 10,000
rows a second. The job's process reads the file and hands batches of raw rows
to the pool; each process validates its batch, encrypts the document numbers,
geocodes the cities (its own cache over the gazetteer) and returns the valid
rows already encoded for ``COPY … (FORMAT BINARY)``, with the rejections and
warnings by row number. Batches come back in file order, so the job's
result is the same whatever the number of processes.

The pool is forked from the job's process when the job starts (the keyring,
the gazetteer and the validator are inherited, not rebuilt) and ended with
it. It is billiard's (Celery's own multiprocessing): a prefork worker child
is a daemonic process, which the standard library's pool refuses to fork
from. A pool process does nothing with the database or the broker (the
sockets it inherits stay unused) and exits when its parent dies, so a worker
killed mid-import leaves no process behind; its transaction dies with it.
"""
from __future__ import annotations

import os
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import billiard
from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from psycopg import adapters
from psycopg._copy_base import format_row_binary  # psycopg's own row encoder (C), as Copy.write_row uses
from psycopg.adapt import Transformer
from psycopg.pq import Format

from registry.errors import ApiError
from registry.geocoding import gazetteer
from registry.imports.reader import Row
from registry.imports.rows import HOUSEHOLD_SLOT, STAGING, STAGING_COLUMNS, RowValidator
from registry.nationals.services import GPS_DEFAULT_PRECISION_M

# A valid row as stored in staging: the document numbers replaced by their ciphertext and blind index
# (and, while the index key is being rotated, the passport's index under each older key).
PASSPORT_SLOT = STAGING_COLUMNS.index("passport_number")
assert STAGING_COLUMNS[PASSPORT_SLOT + 1] == "national_id_number"
HOST_SLOT, CITY_SLOT, LAT_SLOT = (STAGING_COLUMNS.index(c) for c in ("host_country", "city", "lat"))
assert STAGING_COLUMNS[LAT_SLOT:] == ("lat", "lon")
NATIONALITY_SLOT = STAGING_COLUMNS.index("nationality")
# ... and the location's source and precision appended: gps (checked against the host country in
# the database), geocoded_city (from the gazetteer), or null (the country's reference point).
STORED = (STAGING[:PASSPORT_SLOT]
          + (("passport_ciphertext", "bytea"), ("passport_index", "bytea"), ("passport_older_indexes", "bytea[]"),
             ("national_id_ciphertext", "bytea"), ("national_id_index", "bytea"))
          + STAGING[PASSPORT_SLOT + 2:]
          + (("location_source", "text"), ("location_precision_m", "float8")))

# PostgreSQL's binary COPY framing: the signature, flags and header extension, and the end marker.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = b"\xff\xff"
# Batches handed to the pool and not yet taken back, per process: enough to keep each busy while the
# job's process reads the file and stores, few enough to bound memory.
IN_FLIGHT_PER_PROCESS = 2


class ValidationProcessLost(ApiError):
    code, title = "import-process-lost", "A process validating the file stopped"


@dataclass
class Checked:
    """A batch, validated: its valid rows as a binary COPY payload, and what the job reports."""
    payload: bytes
    valid: int
    # (row, [(field, message)]) of each rejected row, in file order.
    rejected: list[tuple[int, list[tuple[str, str]]]] = field(default_factory=list)
    # (row, nationality, passport) of each valid row with a passport, for duplicates within the file.
    passports: list[tuple[int, str, str]] = field(default_factory=list)
    # Rows whose city is not in the gazetteer (the country's reference point was used).
    unlocated: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0
    process: int = 0  # the process that validated it


class BatchChecker:
    """What a process needs to validate a batch: built in the job's process before the pool forks."""

    def __init__(self, header: list[str], ring):
        self.validator = RowValidator(header)
        self.ring = ring
        self.older_index_versions = ring.older_index_versions
        # Households by the file's reference, the same UUID in every process: one random namespace per job.
        self.households = uuid.uuid4()
        self.locate = CityLocator()
        self._transformer: Transformer | None = None

    def _encoder(self) -> Transformer:
        if self._transformer is None:
            transformer = Transformer()
            transformer.set_dumper_types([adapters.types.get_oid(kind) for _, kind in STORED], Format.BINARY)
            self._transformer = transformer
        return self._transformer

    def check(self, batch: list[Row]) -> Checked:
        validate, ring, locate = self.validator.validate, self.ring, self.locate
        older, households = self.older_index_versions, self.households
        encoder, payload = self._encoder(), bytearray(_COPY_HEADER)
        checked = Checked(b"", 0, rows=len(batch), process=os.getpid())
        for row in batch:
            values, row_errors = validate(row)
            if row_errors:
                checked.rejected.append((row.number, row_errors))
                continue
            national_id, passport, number = values[1], values[PASSPORT_SLOT], values[PASSPORT_SLOT + 1]
            if passport:
                checked.passports.append((row.number, values[NATIONALITY_SLOT], passport))
            ref = values[HOUSEHOLD_SLOT]
            household = uuid.uuid5(households, ref) if ref else uuid.uuid4()
            documents = (
                ring.encrypt("passport", national_id, passport) if passport else None,
                ring.blind_index("passport", passport) if passport else None,
                [ring.blind_index("passport", passport, v) for v in older] if passport and older else None,
                ring.encrypt("national_id", national_id, number) if number else None,
                ring.blind_index("national_id", number) if number else None,
            )
            if values[LAT_SLOT] is not None:
                location = (values[LAT_SLOT], values[LAT_SLOT + 1], "gps", GPS_DEFAULT_PRECISION_M)
            else:
                location = locate(values[HOST_SLOT], values[CITY_SLOT])
                if location[2] is None and values[CITY_SLOT]:
                    checked.unlocated.append((row.number, values[HOST_SLOT]))
            format_row_binary(values[:HOUSEHOLD_SLOT] + (household,) + values[HOUSEHOLD_SLOT + 1:PASSPORT_SLOT]
                              + documents + values[PASSPORT_SLOT + 2:LAT_SLOT] + location, encoder, payload)
            checked.valid += 1
        payload += _COPY_TRAILER
        checked.payload = bytes(payload)
        return checked


class CityLocator:
    """Host country + city → (lat, lon, source, precision) from the gazetteer, each pair looked up once."""

    def __init__(self):
        self._gazetteer = gazetteer()
        self._cache: dict[tuple[str, str | None], tuple] = {}

    def __call__(self, country: str, city: str | None) -> tuple:
        key = (country, city)
        found = self._cache.get(key)
        if found is None:
            match = self._gazetteer.lookup(country, city) if city else None
            found = (match.place.lat, match.place.lon, "geocoded_city", match.place.precision_m) if match \
                else (None, None, None, None)
            self._cache[key] = found
        return found


def process_count(setting: int) -> int:
    """REGISTRY_IMPORT_PROCESSES, 0 meaning one per CPU this process may run on."""
    if setting > 0:
        return setting
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def batches_of(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# The pool's processes: the checker inherited from the job's process (set before forking).
_checker: BatchChecker | None = None


def _start_process(checker: BatchChecker, parent: int) -> None:
    global _checker
    _checker = checker
    threading.Thread(target=_exit_with_parent, args=(parent,), name="import-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A pool process whose job's process died (SIGKILL, OOM) would otherwise wait for work for ever."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _check(batch: list[Row]) -> Checked:
    return _checker.check(batch)


class CheckingPool:
    """Batches in, ``Checked`` out in the same order; in this process when ``processes`` is 1."""

    def __init__(self, checker: BatchChecker, processes: int):
        self.checker = checker
        self.processes = processes
        self._pool = None
        if processes > 1:
            context = billiard.get_context("fork")
            self._pool = context.Pool(processes, initializer=_start_process, initargs=(checker, os.getpid()))

    def checked(self, batches: Iterable[list[Row]]) -> Iterator[Checked]:
        if self._pool is None:
            for batch in batches:
                yield self.checker.check(batch)
            return
        pending: deque = deque()
        for batch in batches:
            pending.append(self._pool.apply_async(_check, (batch,)))
            if len(pending) >= IN_FLIGHT_PER_PROCESS * self.processes:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    @staticmethod
    def _result(pending) -> Checked:
        """The batch's ``Checked``; an error raised in the process (a MemoryError) is raised here."""
        try:
            return pending.get()
        except ExceptionWithTraceback as lost:  # billiard's wrapper, when the process itself died
            if isinstance(lost.exc, WorkerLostError):
                raise ValidationProcessLost(
                    "A process validating the file stopped (killed, or out of memory: "
                    "REGISTRY_WORKER_MAX_MEMORY_MB). Nothing was imported: start the import again.") from None
            raise

    @property
    def pids(self) -> list[int]:
        """The pool's processes (none when this process validates alone)."""
        return [process.pid for process in self._pool._pool] if self._pool is not None else []

    def close(self) -> None:
        """End the processes (also after an error: their pending batches are dropped)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.terminate()
            pool.join()

    def __enter__(self) -> CheckingPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
