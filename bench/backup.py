"""Encrypted backup and restore beside bare pg_dump / pg_restore of the same database.

    python bench/backup.py [--nationals 100000] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_backup] [--redis-url redis://127.0.0.1:6379/2]

1. Creates and migrates the database; seeds (once) N nationals with 48 random bytes as each passport
   ciphertext and 32 as its index (incompressible, as real ciphertexts are) and one audit event each.
2. Backup: the floor is `pg_dump --format=custom --file` of the database; the path is the service's
   `write_backup` (a snapshot with every table's row count, pg_dump into the encryption, a file fsynced).
3. Restore, each into a new database dropped afterwards: the floor is `pg_restore --single-transaction
   --no-owner` from the floor's file; the path is what `registry restore` does to the database: the
   authentication pass over the whole file, then pg_restore fed chunk by chunk as they decrypt, then the
   row counts compared and ANALYZE (reported apart). The app-level checks (audit chain, document numbers)
   are left out: bench/audit.py measures verifying the chain.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from bench.exposure import libpq_url, migrated_app  # noqa: E402


def seed(url: str, count: int) -> None:
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM nationals WHERE search_name = 'bench backup'").fetchone()[0]
        if have == count:
            print(f"seed: {have:,} nationals already there")
            return
        started = time.monotonic()
        conn.execute("TRUNCATE audit_events, nationals CASCADE")
        conn.execute("""
            INSERT INTO nationals (id, family_name, given_names, nationality, jurisdiction_country, household_id,
                                   search_name, location, location_source, passport_ciphertext, passport_index)
            SELECT gen_random_uuid(), 'Bench', 'Backup ' || i, 'PH', 'AE', gen_random_uuid(), 'bench backup',
                   ST_SetSRID(ST_MakePoint(55.0 + (i %% 1000) * 0.001, 25.0 + (i / 1000) * 0.001), 4326), 'gps',
                   decode(md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex'),
                   decode(md5(random()::text) || md5(random()::text), 'hex')
            FROM generate_series(1, %s) AS i""", (count,))
        conn.execute("""
            INSERT INTO audit_events (action, outcome, object_type, object_ids, result_count, details)
            SELECT 'get_national', 'ok', 'national', ARRAY[id], 1, '{"status": 200}'::jsonb FROM nationals""")
        conn.execute("ANALYZE")
    print(f"seed: {count:,} nationals and as many audit events in {time.monotonic() - started:.1f} s")


def database_named(url: str, name: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(url), "dbname": name})


def admin(url: str, statement: str) -> None:
    with psycopg.connect(database_named(url, "postgres"), autocommit=True) as conn:
        conn.execute(statement)


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nationals", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_backup")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2")
    args = parser.parse_args()
    url = libpq_url(args.database_url)
    app = migrated_app(url, args.redis_url)
    seed(url, args.nationals)

    from registry import config
    from registry.backups import database, services

    key = bytes(range(32))
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(f"\ndatabase: {args.nationals:,} nationals, {size / 1e6:,.0f} MB on disk")
    with tempfile.TemporaryDirectory(prefix="sagip-bench-backup-") as folder:
        floor_file, backup_file = Path(folder) / "floor.dump", Path(folder) / "bench.sagip"
        floor_dump, _ = timed(lambda: subprocess.run(["pg_dump", "--format=custom", f"--file={floor_file}",
                                                      f"--dbname={url}"], check=True))
        with app.app_context():
            backup_time, written = timed(lambda: services.backup_to_file(
                backup_file, url=config.database_url(url), key=key, app_config=app.config))
        print(f"backup:  pg_dump -Fc to a file (floor) {floor_dump:6.2f} s  {floor_file.stat().st_size / 1e6:7.1f} MB"
              f"\n         registry backup               {backup_time:6.2f} s  {written.file_bytes / 1e6:7.1f} MB"
              f"  ({backup_time / floor_dump:.2f}x the floor; with the row count of every table)")

        floor_db, path_db = f"sagip_bench_backup_floor_{uuid.uuid4().hex[:6]}", \
            f"sagip_bench_backup_path_{uuid.uuid4().hex[:6]}"
        try:
            admin(url, f'CREATE DATABASE "{floor_db}"')
            floor_restore, _ = timed(lambda: subprocess.run(
                ["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner", "--no-comments",
                 f"--dbname={database_named(url, floor_db)}", str(floor_file)], check=True))
            admin(url, f'CREATE DATABASE "{path_db}"')
            target = database_named(url, path_db)
            authenticate, manifest = timed(lambda: services.read_manifest(backup_file, key))
            stream, _ = timed(lambda: (database.ensure_roles(target, manifest["roles"]),
                                       services.restore_archive(backup_file, key, target)))
            counting, differences = timed(lambda: services.count_differences(target, manifest))
            analyze, _ = timed(lambda: database.analyze(target))
            assert not differences, differences
        finally:
            admin(url, f'DROP DATABASE IF EXISTS "{floor_db}" WITH (FORCE)')
            admin(url, f'DROP DATABASE IF EXISTS "{path_db}" WITH (FORCE)')
        print(f"restore: pg_restore -1 from the file (floor)  {floor_restore:6.2f} s"
              f"\n         registry restore, pg_restore stream  {stream:6.2f} s  ({stream / floor_restore:.2f}x the floor)"
              f"\n           + authentication pass {authenticate:.2f} s, row counts {counting:.2f} s, "
              f"ANALYZE {analyze:.2f} s: {authenticate + stream + counting + analyze:.2f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
