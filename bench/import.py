"""Benchmark the bulk import against a bare COPY of the same rows.

    python bench/import.py [--rows 200000] [--runs 3] [--database-url URL] [--seed 7] [--profile FILE]
        [--processes N]

Uses a scratch database (created and migrated if missing; its registrations
are truncated before every run, never the real database's). With ``--keep-registry`` the
database holds a seeded registry (``bench/seed.py``, e.g. ``sagip_bench_10m``): nothing is
truncated, each run's rows (the bench user's) are deleted after it instead, so the file is
imported into a registry of that size (one import file holds at most 1M rows:
REGISTRY_IMPORT_MAX_ROWS; "import at 10M" is a file into ten million). Per run it times:

* the real import path, in-process, exactly as ``registry import`` does it
  (``create_import`` + ``run_job(..., run_import)``, with its validator
  processes): from the CSV bytes to committed nationals, deployments, location
  reports and next of kin;
* the floor: a bare psycopg ``COPY nationals (...) FROM STDIN`` of the same
  rows' values, already parsed (no validation, no staging, no other tables),
  into the same table with the same indexes; and the same floor for all four
  tables the import writes.

The rows are checked by ``--processes`` validator processes (REGISTRY_IMPORT_PROCESSES; default one per CPU,
1: the job's own process), printed first. It also times reading the CSV and ``RowValidator.validate`` alone,
in this one process, which
splits the import into parse + validate and the rest (database). With
``--profile FILE`` one more import runs under cProfile, its stats saved to
FILE and the top functions printed.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/sagip_bench"
TRUNCATE = "TRUNCATE nationals, deployments, location_reports, next_of_kin, jobs, outbox, import_files CASCADE"
NATIONAL_COLUMNS = (
    "id", "family_name", "given_names", "native_name", "sex", "date_of_birth", "nationality", "passport_ciphertext",
    "passport_index", "national_id_ciphertext", "national_id_index", "phones", "email", "languages", "vulnerabilities", "household_id", "status", "source",
    "search_name", "jurisdiction_country", "location", "location_source", "location_precision_m",
    "location_reported_at", "created_by",
)
DEPLOYMENT_COLUMNS = ("id", "national_id", "is_current", "host_country", "city", "address", "employer",
                      "occupation_isco", "sector", "contract_start", "contract_end", "legal_status",
                      "recruitment_agency")
REPORT_COLUMNS = ("national_id", "geom", "source", "precision_m", "reported_at")
KIN_COLUMNS = ("national_id", "name", "relation", "phone")


def libpq_url(url: str) -> str:
    """A URL psycopg accepts (no SQLAlchemy driver suffix)."""
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep and scheme.startswith("postgres") else url


def ensure_database(url: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    name = info.get("dbname")
    if not name:
        raise SystemExit(f"--database-url needs a database name: {url}")
    admin = psycopg.conninfo.make_conninfo(**{**info, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def median_rate(rows: int, seconds: list[float]) -> float:
    return rows / statistics.median(seconds)


def prepare_floor(rows, columns, user_id, centroids):
    """The already-parsed values a validation-free COPY would write, for the four tables.

    The document numbers are encrypted here, before the clock starts: the floor is the database's work.
    """
    from registry.crypto import keyring
    from registry.nationals.services import GPS_DEFAULT_PRECISION_M as gps_precision
    ring = keyring()

    def sealed(field, owner, number):
        return (ring.encrypt(field, owner, number), ring.blind_index(field, number)) if number else (None, None)

    c = {name: i for i, name in enumerate(columns)}
    now = datetime.now(timezone.utc)
    households: dict[str, uuid.UUID] = {}
    nationals, deployments, reports, kin = [], [], [], []

    def split(value):
        return [v for v in value.split(";") if v]

    for r in rows:
        national_id = uuid.uuid4()
        ref = r[c["household_ref"]]
        household = households.setdefault(ref, uuid.uuid4()) if ref else uuid.uuid4()
        host = r[c["host_country"]]
        if r[c["lat"]]:
            location, source, precision = f"SRID=4326;POINT({r[c['lon']]} {r[c['lat']]})", "gps", gps_precision
        else:
            location, precision = centroids[host]
            source = "country_centroid"
        nationals.append((
            national_id, r[c["family_name"]], r[c["given_names"]], r[c["native_name"]] or None, r[c["sex"]],
            date.fromisoformat(r[c["date_of_birth"]]), r[c["nationality"]],
            *sealed("passport", national_id, r[c["passport_number"]]),
            *sealed("national_id", national_id, r[c["national_id_number"]]), split(r[c["phones"]]), r[c["email"]] or None,
            split(r[c["languages"]]), split(r[c["vulnerabilities"]]), household, "abroad", "bulk_import", "",
            host, location, source, precision, now, user_id,
        ))
        start, end = r[c["contract_start"]], r[c["contract_end"]]
        deployments.append((
            uuid.uuid4(), national_id, True, host, r[c["city"]] or None, r[c["address"]] or None,
            r[c["employer"]] or None, r[c["occupation_isco"]] or None, r[c["sector"]] or None,
            date.fromisoformat(start) if start else None, date.fromisoformat(end) if end else None,
            r[c["legal_status"]] or "unknown", r[c["recruitment_agency"]] or None,
        ))
        reports.append((national_id, location, source, precision, now))
        if r[c["next_of_kin_name"]] or r[c["next_of_kin_relation"]] or r[c["next_of_kin_phone"]]:
            kin.append((national_id, r[c["next_of_kin_name"]] or None, r[c["next_of_kin_relation"]] or None,
                        r[c["next_of_kin_phone"]] or None))
    return nationals, deployments, reports, kin


class StatementClock:
    """Wall time of each SQL statement the import runs (SQLAlchemy engine events).

    The checks and the COPYs of the batches run on the raw driver cursor and
    are invisible to these events. Statements run on two threads (progress on the import's,
    batches on its store thread), so start times are kept per cursor.
    """

    def __init__(self, engine):
        from sqlalchemy import event
        self.events: list[tuple[float, float, str]] = []
        self._started: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.events.append((self._started.pop(id(cursor)), time.perf_counter(), " ".join(statement.split())))

    def _commit(self, conn):
        now = time.perf_counter()
        self.events.append((now, now, "COMMIT (sent)"))

    def report(self, started: float, finished: float) -> str:
        """Wall time per statement, summed over the import's batches.

        The statements run on the import's store thread while the main thread
        validates the next batch, so their sum overlaps the validation time.
        """
        totals: dict[str, list[float]] = {}
        for begin, end, statement in self.events:
            if begin < started or end > finished:
                continue
            entry = totals.setdefault(statement[:100], [0.0, 0])
            entry[0] += end - begin
            entry[1] += 1
        lines = [f"    {seconds:8.2f} s  {calls:4d}x  {statement}"
                 for statement, (seconds, calls) in sorted(totals.items(), key=lambda item: -item[1][0])
                 if seconds >= 0.05]
        in_database = sum(seconds for seconds, _ in totals.values())
        lines.append(f"    {in_database:8.2f} s  in statements, of {finished - started:.2f} s of import wall time "
                     f"(the batches' checks and COPYs not included; they overlap validation)")
        return "\n".join(lines)


def copy_rows(conn, table: str, columns, values) -> None:
    with conn.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help="a scratch database: its registrations are truncated (default: %(default)s)")
    parser.add_argument("--profile", metavar="FILE", help="also profile one import with cProfile, stats to FILE")
    parser.add_argument("--keep-registry", action="store_true",
                        help="import into the registry already there (a bench/seed.py database); delete only the "
                             "rows each run added")
    parser.add_argument("--processes", type=int, default=0,
                        help="REGISTRY_IMPORT_PROCESSES: validator processes (default: one per CPU)")
    args = parser.parse_args(argv)
    if libpq_url(args.database_url).rstrip("/").endswith("/sagip"):
        raise SystemExit("refusing to benchmark in the development database 'sagip': it is truncated per run")

    import flask_migrate
    from sqlalchemy import select, text

    from registry import create_app
    from registry.auth.models import User
    from registry.config import database_url
    from registry.demo import generate_rows, rows_to_csv
    from registry.extensions import db
    from registry.geocoding import gazetteer
    from registry.imports.reader import ReadLimits, open_rows
    from registry.imports.rows import COLUMNS, RowValidator
    from registry.imports.pool import process_count
    from registry.imports.services import create_import, run_import
    from registry.jobs.models import Job
    from registry.jobs.runner import run_job

    ensure_database(args.database_url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url(args.database_url),
                      "REGISTRY_IMPORT_PROCESSES": args.processes})
    processes = process_count(args.processes)
    print(f"validator processes: {processes}" + (" (the job's own process)" if processes == 1 else ""))
    n = args.rows
    conninfo = libpq_url(args.database_url)

    with app.app_context():
        flask_migrate.upgrade()
        user = db.session.scalar(select(User).where(User.name == "bench", User.role == "admin"))
        if user is None:
            user = User(name="bench", role="admin", jurisdiction=[])
            db.session.add(user)
        db.session.commit()
        user_id = user.id
        if args.keep_registry:
            with psycopg.connect(conninfo) as owner:  # the service's role sees no row outside a request
                there = owner.execute("SELECT count(*) FROM nationals").fetchone()[0]
            print(f"registry: {there:,} nationals already there (kept; each run's rows deleted after it)")
        centroids = {code: (f"SRID=4326;POINT({lon} {lat})", precision) for code, lon, lat, precision in
                     db.session.execute(text("SELECT alpha2, ST_X(label_point), ST_Y(label_point), precision_m "
                                             "FROM countries"))}

        started = time.perf_counter()
        rows = generate_rows(n, args.seed)
        generated = time.perf_counter() - started
        data = rows_to_csv(rows)
        print(f"{n} rows generated in {generated:.2f} s ({n / generated:,.0f} rows/s); "
              f"CSV {len(data) / 1e6:.1f} MB")

        # Parse + validate alone: the loop run_import runs before touching the database.
        started = time.perf_counter()
        header, reader, _ = open_rows(data, ReadLimits.from_config(app.config))
        cells = list(reader)
        parsed = time.perf_counter() - started
        validator = RowValidator(header)
        started = time.perf_counter()
        rejected = sum(1 for row in cells if validator.validate(row)[1])
        validated = time.perf_counter() - started
        del cells
        print(f"CSV parse {parsed:.2f} s; RowValidator.validate {validated:.2f} s "
              f"({n / validated:,.0f} rows/s, {validated / n * 1e6:.0f} µs/row); rejected {rejected}")

        def clear():
            # As the owner: the service's database role may not TRUNCATE (nor delete registrations).
            db.session.rollback()
            with psycopg.connect(conninfo, autocommit=True) as owner:
                if not args.keep_registry:
                    owner.execute(TRUNCATE)
                    return
                # Only what the bench user added (its deployments, reports, kin and history go by cascade).
                owner.execute("DELETE FROM nationals WHERE created_by = %s", (user_id,))
                owner.execute("ANALYZE nationals")

        last_import = {}

        def real_import() -> float:
            clear()
            clock.events.clear()
            started = time.perf_counter()
            job = create_import("bench.csv", data, db.session.get(User, user_id))
            db.session.info.pop("sagip_outbox_pending", None)  # run here, not on a worker
            db.session.commit()
            run_job(str(job.id), run_import)
            elapsed = time.perf_counter() - started
            last_import.update(started=started, finished=started + elapsed)
            db.session.expire_all()
            job = db.session.get(Job, job.id)
            if job.status != "succeeded":
                raise SystemExit(f"import failed: {job.error}")
            result = job.result
            if result["created"] != n or result["rejected"] or result["duplicates"]:
                raise SystemExit(f"expected {n} created, got {result['created']} created, "
                                 f"{result['rejected']} rejected, {result['duplicates']} duplicates: "
                                 f"{result['errors'][:5]}")
            return elapsed

        def import_without_geodata() -> float:
            """The same import with geocoding and the host-country point check switched off (bench only: in this
            process, so with one validator process only)."""
            from registry.imports import batches
            from registry.imports import services as import_services
            saved = batches.CityLocator.__call__, import_services._OUTSIDE_HOST_SQL
            batches.CityLocator.__call__ = lambda self, country, city: (None, None, None, None)
            import_services._OUTSIDE_HOST_SQL = ("SELECT * FROM unnest(%s::int[], %s::float8[], %s::float8[], "
                                                 "%s::text[]) WHERE false")
            try:
                return real_import()
            finally:
                batches.CityLocator.__call__, import_services._OUTSIDE_HOST_SQL = saved

        clock = StatementClock(db.engine)
        # The store's own clock (its checks and COPYs run on the raw driver cursor, unseen by the clock above).
        from registry.imports import services as import_services
        stored_seconds: dict = {}
        close_store = import_services._BatchStore.close

        def closing_store(store):
            close_store(store)
            stored_seconds.update(store.seconds)

        import_services._BatchStore.close = closing_store
        nationals, deployments, reports, kin = prepare_floor(rows, COLUMNS, user_id, centroids)
        gazetteer()  # loaded once per process, as in a worker: not part of an import
        real, bare, floor, floor_all = [], [], [], []
        for run in range(1, args.runs + 1):
            if processes == 1:
                bare.append(import_without_geodata())
                db.session.close()
            real.append(real_import())
            db.session.close()

            clear()
            with psycopg.connect(conninfo) as conn:
                started = time.perf_counter()
                copy_rows(conn, "nationals", NATIONAL_COLUMNS, nationals)
                conn.commit()
                floor.append(time.perf_counter() - started)
            clear()
            with psycopg.connect(conninfo) as conn:
                started = time.perf_counter()
                copy_rows(conn, "nationals", NATIONAL_COLUMNS, nationals)
                copy_rows(conn, "deployments", DEPLOYMENT_COLUMNS, deployments)
                copy_rows(conn, "location_reports", REPORT_COLUMNS, reports)
                copy_rows(conn, "next_of_kin", KIN_COLUMNS, kin)
                conn.commit()
                floor_all.append(time.perf_counter() - started)
            without = f"without geocoding and point checks {bare[-1]:.2f} s; " if bare else ""
            print(f"run {run}: import {real[-1]:.2f} s ({n / real[-1]:,.0f} rows/s, created {n}), {without}"
                  f"COPY nationals {floor[-1]:.2f} s ({n / floor[-1]:,.0f} rows/s); "
                  f"COPY 4 tables {floor_all[-1]:.2f} s ({n / floor_all[-1]:,.0f} rows/s)")

        real_rate, floor_rate, all_rate = median_rate(n, real), median_rate(n, floor), median_rate(n, floor_all)
        median_real = statistics.median(real)
        print()
        print(f"median over {args.runs} runs of {n} rows:")
        print(f"  import (real path)        {real_rate:>10,.0f} rows/s  ({median_real:.2f} s)")
        if bare:
            median_bare = statistics.median(bare)
            print(f"  without geodata           {n / median_bare:>10,.0f} rows/s  ({median_bare:.2f} s)"
                  f"   geocoding + point checks add {median_real / median_bare - 1:+.0%} to the import time")
        print(f"  COPY nationals (floor)    {floor_rate:>10,.0f} rows/s  ({statistics.median(floor):.2f} s)"
              f"   import is {real_rate / floor_rate:.2f}x the floor ({floor_rate / real_rate:.1f}x slower)")
        print(f"  COPY all 4 tables         {all_rate:>10,.0f} rows/s  ({statistics.median(floor_all):.2f} s)"
              f"   import is {real_rate / all_rate:.2f}x ({all_rate / real_rate:.1f}x slower)")
        other = median_real - parsed - validated
        print(f"  import breakdown: CSV parse {parsed:.2f} s ({parsed / median_real:.0%}), "
              f"validate {validated:.2f} s ({validated / median_real:.0%}), "
              f"the rest {other:.2f} s ({other / median_real:.0%}: database, COPY, loop overhead; "
              f"see the statements below)")

        print(f"  the last import's batches, on its store's thread: checks (points, passports) "
              f"{stored_seconds['checks']:.2f} s, COPYs into the 4 tables {stored_seconds['copies']:.2f} s")
        print("  other statements of the last import (wall time, summed over batches):")
        print(clock.report(last_import["started"], last_import["finished"]))

        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            real_import()
            profile.disable()
            profile.dump_stats(args.profile)
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(30)
            print(out.getvalue())
        clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
