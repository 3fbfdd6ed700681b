"""Bulk import of registrations (SPEC §4.2): queue a file, then validate and store its rows.

Storing is one transaction: a batch at a time, the valid rows' points are
checked against their host countries and their passports against the
registry, and the rows left are COPYed into the four tables they are stored in
(nationals, location_reports, deployments, next_of_kin), already encoded by
whoever checked them (registry/imports/batches.py); the job is marked
succeeded in the same commit. A worker killed half-way leaves nothing behind,
and the re-run starts clean.
"""
from __future__ import annotations

import gc
import posixpath
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import current_app
from sqlalchemy import text

from registry import geo
from registry.audit import services as audit
from registry.auth.models import User
from registry.crypto import keyring
from registry.errors import Unprocessable
from registry.extensions import db
from registry.imports.batches import TABLES, BatchChecker, Checked, CheckSettings, batches_of, copy_payload
from registry.imports.pool import ValidatorProcesses, process_count
from registry.imports.reader import ReadLimits, open_rows, read_start
from registry.imports.rows import COLUMNS, RowValidator
from registry.jobs import services as jobs
from registry.jobs import uploads
from registry.jobs.models import Job
from registry.nationals.services import GPS_DEFAULT_PRECISION_M

IMPORT_TASK = "imports.run_import"
# Rows per batch: checked by one validator process (or this one), then stored while the next ones are checked.
BATCH_ROWS = 10_000
MAX_ERRORS_LISTED = 10_000


def template_csv() -> str:
    example = {
        "family_name": "Dela Cruz", "given_names": "Maria Luisa", "sex": "F", "date_of_birth": "1990-04-12",
        "nationality": "PH", "passport_number": "P1234567A", "phones": "+971501234567",
        "vulnerabilities": "pregnant", "household_ref": "H1", "host_country": "AE", "city": "Dubai",
        "employer": "Emirates Hospitality LLC", "occupation": "Waiter", "occupation_isco": "5131", "contract_start": "2025-01-15",
        "contract_end": "2027-01-14", "legal_status": "documented", "lat": "25.1124", "lon": "55.198",
    }
    return ",".join(COLUMNS) + "\r\n" + ",".join(example.get(c, "") for c in COLUMNS) + "\r\n"


def create_import(filename: str, data: bytes, user) -> Job:
    """Store the upload and queue its job (sent after the caller commits). The file is not read here: a
    worker reads it, with bounds (registry/imports/reader.py)."""
    job = jobs.enqueue("import", IMPORT_TASK, params={"filename": filename[:255]}, created_by=user.id)
    uploads.store(job.id, filename, data)
    return job


class WrongFileType(Unprocessable):
    code, title = "wrong-file-type", "The file is not a CSV or an XLSX file"


FILE_SUFFIXES = (".csv", ".xlsx")


def check_upload(filename: str, data: bytes) -> None:
    """Refuse at once, beside the form's ``file`` field, a file whose start shows the worker would refuse it:
    empty, not named .csv or .xlsx (or named one but holding the other), an old or encrypted workbook, a
    damaged zip, a workbook that would unzip too far, a CSV that is binary or whose header names unknown,
    repeated or too few columns. Only the start is read (an XLSX's directory, a CSV's header line); the rows
    are still read by the worker. The console calls it before ``create_import``; the API leaves it to the
    worker, whose job then fails with the same message.

    :raises Unprocessable: with ``errors={"file": [why]}``.
    """
    suffix = posixpath.splitext((filename or "").lower())[1]
    try:
        if not data:
            raise Unprocessable("The file is empty.")
        workbook = data[:4] == b"PK\x03\x04"
        if suffix not in FILE_SUFFIXES:
            named = f" (this one ends in {suffix[:12]})" if suffix else ""
            raise WrongFileType(f"Choose a CSV or XLSX file{named}: save the spreadsheet as CSV UTF-8 or as an "
                                "Excel workbook (.xlsx).")
        if workbook != (suffix == ".xlsx"):
            raise WrongFileType(f"The file is named {suffix} but holds "
                                f"{'an XLSX workbook' if workbook else 'no XLSX workbook'}: save it again as "
                                "CSV UTF-8 or as an Excel workbook (.xlsx).")
        header = read_start(data, ReadLimits.from_config(current_app.config))
        if header is not None:
            RowValidator(header)
    except Unprocessable as refused:
        refused.errors = {"file": [refused.detail]}
        raise


# Existing registrations with the same passport: reported, left unchanged. The batch's passports are checked
# with their index under the current key, then (during a rotation, registry keys rotate-index) under each older
# key's; a row found by one check is not looked up again.
_DUPLICATES_SQL = """
SELECT DISTINCT ON (k.row_no) k.row_no, n.id
FROM unnest(%s::int[], %s::text[], %s::bytea[]) AS k(row_no, nationality, passport_index)
JOIN nationals n ON n.nationality = k.nationality AND n.passport_index = k.passport_index
ORDER BY k.row_no
"""

# GPS points not in (nor within the tolerance of) their host country: refused as row errors, and
# explained afterwards by registry.geo (swapped? at sea? which country?). The cheap test first. Each test is
# a subquery per point (OFFSET 0 keeps it one), which finds the point's part through the geometry's index:
# as an anti-join the planner hashes the parts by country and tests each point against every part of its
# country (118 s instead of under 1 s for 16,000 points in the Gulf).
_OUTSIDE_HOST_SQL = f"""
SELECT k.row_no, k.lon, k.lat, k.host_country
FROM unnest(%s::int[], %s::float8[], %s::float8[], %s::text[]) AS k(row_no, lon, lat, host_country)
WHERE NOT EXISTS (SELECT 1 FROM country_parts p WHERE p.alpha2 = k.host_country
                  AND ST_Intersects(p.geom, ST_SetSRID(ST_MakePoint(k.lon, k.lat), 4326)) OFFSET 0)
  AND NOT EXISTS (SELECT 1 FROM country_parts p WHERE p.alpha2 = k.host_country
                  AND ST_DWithin(p.geom::geography, ST_SetSRID(ST_MakePoint(k.lon, k.lat), 4326)::geography,
                                 {geo.BORDER_TOLERANCE_M}) OFFSET 0)
"""

_COPY_SQL = tuple(f"COPY {table} ({', '.join(name for name, _ in columns)}) FROM STDIN (FORMAT BINARY)"
                  for table, columns in TABLES)

_COUNTRIES_SQL = "SELECT alpha2, ST_AsEWKB(label_point), precision_m FROM countries"


def run_import(job: Job) -> dict:
    """Validate every row, store the good ones, report the rest; commits with the job's result.

    The rows are checked in batches (registry/imports/batches.py), by ``REGISTRY_IMPORT_PROCESSES`` validator
    processes (registry/imports/pool.py) when the file has more than one batch, while this process reads the
    file and stores the batches already checked, in file order.
    """
    config = current_app.config
    header, rows, estimate = open_rows(uploads.read(job.id), ReadLimits.from_config(config))
    ring = keyring()
    connection = db.session.connection()
    countries = {alpha2: (bytes(location) if location is not None else None, precision)
                 for alpha2, location, precision in connection.execute(text(_COUNTRIES_SQL))}
    settings = CheckSettings.new(header, ring, GPS_DEFAULT_PRECISION_M, created_by=job.created_by,
                                 reported_at=connection.execute(text("SELECT now()")).scalar(), countries=countries)
    checker = BatchChecker(settings)  # refuses a bad header here, before any process starts
    processes = process_count(config["REGISTRY_IMPORT_PROCESSES"]) if estimate > BATCH_ROWS else 1

    errors: list[dict] = []
    rejected = 0
    seen_passports: dict[tuple[str, str], int] = {}
    duplicate_rows: list[dict] = []
    warnings: list[dict] = []
    read = 0
    # The rows kept in memory are tuples of immutable values: the cyclic garbage
    # collector only slows the loop down (by ~13% on 200k rows).
    gc.disable()
    validators = store = None
    try:
        store = _BatchStore(connection)
        batches = batches_of(rows, BATCH_ROWS)  # blank rows are left out by the reader
        if processes > 1:
            validators = ValidatorProcesses(settings, processes)
            checked_batches = validators.checked(batches, checker)
        else:
            checked_batches = map(checker.check, batches)
        for checked in checked_batches:
            for row_no, row_errors in checked.rejected:
                rejected += 1
                if len(errors) < MAX_ERRORS_LISTED:
                    errors.extend({"row": row_no, "field": f, "message": m} for f, m in row_errors)
            repeated = set()
            for row_no, nationality, passport in checked.passports:
                first = seen_passports.setdefault((nationality, passport), row_no)
                if first != row_no:
                    repeated.add(row_no)
                    duplicate_rows.append({"row": row_no, "field": "passport_number",
                                           "message": f"Same passport as row {first}."})
            for row_no, host in checked.unlocated:
                if row_no not in repeated and len(warnings) < MAX_ERRORS_LISTED:
                    warnings.append({"row": row_no, "field": "city", "message": (
                        f"Not found in the gazetteer of {host}: the country's reference point was used.")})
            store.submit(checked, repeated)
            read += checked.rows
            jobs.set_progress(job.id, min(0.9, 0.9 * read / estimate))
        store.close()
    finally:
        # After an error (the reader refused the file part-way, a validator process died, the database refused
        # a batch) the processes and the thread stop here; the job runner rolls back and deletes the upload
        # (registry/jobs/runner.py).
        gc.enable()
        if validators is not None:
            validators.close()
        if store is not None:
            store.abandon()

    for row_no, lon, lat, host in store.outside_host:
        problem = geo.check_in_country(lon, lat, host)
        rejected += 1
        if len(errors) < MAX_ERRORS_LISTED:
            errors.append({"row": row_no, "field": problem.field if problem else "lat",
                           "message": problem.message if problem else "The point is not in the host country."})
    errors.sort(key=lambda e: e["row"])
    uploads.discard(job.id)
    duplicate_rows.extend(store.duplicate_rows)
    duplicate_rows.sort(key=lambda d: d["row"])
    result = {"created": store.created, "duplicates": len(duplicate_rows), "rejected": rejected,
              "errors": errors, "duplicate_rows": duplicate_rows, "warnings": warnings,
              "errors_truncated": len(errors) >= MAX_ERRORS_LISTED}
    jobs.finish(job.id, result)
    audit.record("imports.run_import", actor=db.session.get(User, job.created_by) if job.created_by else None,
                 object_type="job", object_ids=[job.id], result_count=store.created,
                 details={"rejected": rejected, "duplicates": len(duplicate_rows)})
    db.session.commit()
    return result


class _BatchStore:
    """Stores batches of valid rows on one thread while the caller takes in the next batch.

    Checking a batch is Python (it holds the GIL, here or in a validator
    process); storing one is mostly PostgreSQL working while the thread waits,
    so the two overlap. At most one batch is being stored and a few being
    checked, which also bounds memory. Everything runs in the caller's transaction: nothing is
    committed here, and the connection is only touched by one thread at a time
    (the caller uses it again only after ``close``).
    """

    def __init__(self, connection):
        self._connection = connection
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-store")
        self._pending: Future | None = None
        self.created = 0
        self.duplicate_rows: list[dict] = []
        self.outside_host: list[tuple] = []
        self.seconds = {"checks": 0.0, "copies": 0.0}  # the database's time, summed over batches (bench/import.py)

    def submit(self, checked: Checked, repeated: set[int]) -> None:
        """Store the batch's valid rows, less those ``repeated`` from earlier in the file and those the database
        refuses (a point outside its host country, a passport already registered)."""
        self._wait()
        if checked.valid:
            self._pending = self._executor.submit(self._store, checked, repeated)

    def close(self) -> None:
        self._wait()

    def abandon(self) -> None:
        """Stop the thread; after an error the caller's rollback undoes any stored batch."""
        if self._pending is not None:
            self._pending.cancel()
            wait([self._pending])
        self._executor.shutdown(wait=True)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises a database error in the caller

    def _store(self, checked: Checked, repeated: set[int]) -> None:
        cursor = self._connection.connection.driver_connection.cursor()
        started = time.perf_counter()
        cursor.execute("SET LOCAL jit = off")  # the checks' estimates are high, their runs short: compiling is waste
        left_out = set(repeated)
        points = [p for p in checked.points if p[0] not in left_out]
        if points:
            outside = cursor.execute(_OUTSIDE_HOST_SQL, list(map(list, zip(*points)))).fetchall()
            self.outside_host.extend(outside)
            left_out.update(row_no for row_no, *_ in outside)
        indexes = [i for i in checked.indexes if i[0] not in left_out]
        for version in range(len(indexes[0][2]) if indexes else 0):
            if version:
                indexes = [i for i in indexes if i[0] not in left_out]
            found = cursor.execute(_DUPLICATES_SQL, ([i[0] for i in indexes], [i[1] for i in indexes],
                                                     [i[2][version] for i in indexes])).fetchall()
            for row_no, existing_id in found:
                left_out.add(row_no)
                self.duplicate_rows.append({
                    "row": row_no, "field": "passport_number", "existing_id": str(existing_id),
                    "message": "Already registered; the existing record was left unchanged."})
        kept = [index for index, row_no in enumerate(checked.valid) if row_no not in left_out] \
            if left_out else range(len(checked.valid))
        checked_at = time.perf_counter()
        self.seconds["checks"] += checked_at - started
        for statement, encoded in zip(_COPY_SQL, checked.encoded):
            rows = encoded if len(kept) == len(encoded) else [encoded[index] for index in kept]
            if any(rows):
                with cursor.copy(statement) as copy:
                    copy.write(copy_payload(rows))
        self.seconds["copies"] += time.perf_counter() - checked_at
        self.created += len(kept)
