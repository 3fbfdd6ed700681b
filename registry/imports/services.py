"""Bulk import of registrations (SPEC §4.2): queue a file, then validate and store its rows.

Storing is one transaction: the valid rows are COPYed, a batch at a time,
into a temporary staging table, checked against existing passports, moved
with ``INSERT … SELECT`` and the job marked succeeded in the same commit. A worker
killed half-way leaves nothing behind, and the re-run starts clean.
"""
from __future__ import annotations

import gc
import posixpath
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import current_app
from sqlalchemy import text

from registry import geo
from registry.audit import services as audit
from registry.auth.models import User
from registry.crypto import keyring
from registry.errors import Unprocessable
from registry.extensions import db
from registry.imports.batches import STORED, BatchChecker, CheckSettings, batches_of
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


_STAGING_DDL = ("CREATE TEMP TABLE import_staging ("
                + ", ".join(f"{name} {kind}" for name, kind in STORED) + ") ON COMMIT DROP")

# Existing registrations with the same passport: reported, left unchanged. Run with the index under the
# current key, then (during a rotation, registry keys rotate-index) with each older key's.
_DUPLICATES_SQL = """
DELETE FROM import_staging s USING nationals n
WHERE n.nationality = s.nationality AND n.passport_index = {index}
RETURNING s.row_no, n.id
"""

# GPS points not in (nor within the tolerance of) their host country: refused as row errors, and
# explained afterwards by registry.geo (swapped? at sea? which country?). The cheap test first.
_OUTSIDE_HOST_SQL = f"""
DELETE FROM import_staging s
WHERE s.location_source = 'gps'
  AND NOT EXISTS (SELECT 1 FROM country_parts p WHERE p.alpha2 = s.host_country
                  AND ST_Intersects(p.geom, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)))
  AND NOT EXISTS (SELECT 1 FROM country_parts p WHERE p.alpha2 = s.host_country
                  AND ST_DWithin(p.geom::geography, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography,
                                 {geo.BORDER_TOLERANCE_M}))
RETURNING s.row_no, s.lon, s.lat, s.host_country
"""

_COPY_SQL = f"COPY import_staging ({', '.join(name for name, _ in STORED)}) FROM STDIN (FORMAT BINARY)"

_INSERT_SQL = ("""
WITH inserted AS (
INSERT INTO nationals (id, family_name, given_names, native_name, sex, date_of_birth, nationality,
    passport_ciphertext, passport_index, national_id_ciphertext, national_id_index, phones, email, languages,
    vulnerabilities, household_id, status,
    source, search_name, jurisdiction_country, location, location_source, location_precision_m,
    location_reported_at, created_by, index_key_version)
SELECT s.id, s.family_name, s.given_names, s.native_name, s.sex, s.date_of_birth, s.nationality,
    s.passport_ciphertext, s.passport_index, s.national_id_ciphertext, s.national_id_index, s.phones, s.email,
    s.languages, s.vulnerabilities, s.household_id,
    'abroad', 'bulk_import', s.search_name, s.host_country,
    CASE WHEN s.lat IS NOT NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) ELSE c.label_point END,
    CASE WHEN s.lat IS NOT NULL THEN s.location_source WHEN c.alpha2 IS NOT NULL THEN 'country_centroid' END,
    CASE WHEN s.lat IS NOT NULL THEN s.location_precision_m ELSE c.precision_m END,
    CASE WHEN s.lat IS NOT NULL OR c.alpha2 IS NOT NULL THEN now() END,
    :user_id, :index_key_version
FROM import_staging s LEFT JOIN countries c ON c.alpha2 = s.host_country
RETURNING id, location, location_source, location_precision_m, location_reported_at)
INSERT INTO location_reports (national_id, geom, source, precision_m, reported_at)
SELECT id, location, location_source, location_precision_m, location_reported_at
FROM inserted WHERE location IS NOT NULL
""", """
INSERT INTO deployments (id, national_id, is_current, host_country, city, address, employer, occupation_isco,
    sector, contract_start, contract_end, legal_status, recruitment_agency)
SELECT gen_random_uuid(), s.id, true, s.host_country, s.city, s.address, s.employer, s.occupation_isco,
    s.sector, s.contract_start, s.contract_end, s.legal_status, s.recruitment_agency
FROM import_staging s
""", """
INSERT INTO next_of_kin (national_id, name, relation, phone)
SELECT id, next_of_kin_name, next_of_kin_relation, next_of_kin_phone FROM import_staging
WHERE coalesce(next_of_kin_name, next_of_kin_relation, next_of_kin_phone) IS NOT NULL
""")


def run_import(job: Job) -> dict:
    """Validate every row, store the good ones, report the rest; commits with the job's result.

    The rows are checked in batches (registry/imports/batches.py), by ``REGISTRY_IMPORT_PROCESSES`` validator
    processes (registry/imports/pool.py) when the file has more than one batch, while this process reads the
    file and stores the batches already checked, in file order.
    """
    config = current_app.config
    header, rows, estimate = open_rows(uploads.read(job.id), ReadLimits.from_config(config))
    ring = keyring()
    settings = CheckSettings.new(header, ring, GPS_DEFAULT_PRECISION_M)
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
        store = _BatchStore(db.session.connection(),
                            {"user_id": job.created_by, "index_key_version": ring.index_current},
                            older_index_keys=len(checker.older_index_versions))
        batches = batches_of(rows, BATCH_ROWS)  # blank rows are left out by the reader
        if processes > 1:
            validators = ValidatorProcesses(settings, processes)
            checked_batches = validators.checked(batches)
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
            store.submit(checked.payload, checked.valid, sorted(repeated))
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

    def __init__(self, connection, params: dict, older_index_keys: int = 0):
        self._connection = connection
        self._params = params
        self._duplicate_checks = [_DUPLICATES_SQL.format(index="s.passport_index")] + [
            _DUPLICATES_SQL.format(index=f"s.passport_older_indexes[{k}]") for k in range(1, older_index_keys + 1)]
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-store")
        self._pending: Future | None = None
        self.created = 0
        self.duplicate_rows: list[dict] = []
        self.outside_host: list[tuple] = []
        connection.exec_driver_sql(_STAGING_DDL)

    def submit(self, payload: bytes, rows: int, repeated: list[int]) -> None:
        """Store ``rows`` valid rows (a binary COPY payload), less those ``repeated`` from earlier in the file."""
        self._wait()
        if rows:
            self._pending = self._executor.submit(self._store, payload, rows, repeated)

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

    def _store(self, payload: bytes, rows: int, repeated: list[int]) -> None:
        connection = self._connection
        connection.exec_driver_sql("TRUNCATE import_staging")
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(_COPY_SQL) as copy:
            copy.write(payload)
        if repeated:
            connection.execute(text("DELETE FROM import_staging WHERE row_no = ANY(:rows)"), {"rows": repeated})
        outside = connection.execute(text(_OUTSIDE_HOST_SQL)).all()
        self.outside_host.extend(outside)
        duplicates = [found for check in self._duplicate_checks for found in connection.execute(text(check)).all()]
        for row_no, existing_id in duplicates:
            self.duplicate_rows.append({
                "row": row_no, "field": "passport_number", "existing_id": str(existing_id),
                "message": "Already registered; the existing record was left unchanged."})
        for statement in _INSERT_SQL:
            connection.execute(text(statement), self._params)
        self.created += rows - len(repeated) - len(duplicates) - len(outside)
