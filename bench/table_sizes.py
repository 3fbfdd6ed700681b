"""Bytes per row of the tables that grow, on a seeded database, beside the bare tuple size (docs/scaling.md).

    python bench/table_sizes.py [--nationals 20000] [--audit-events 20000] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_sizes]

1. Creates and migrates the scratch database, then (once) loads the demo with N nationals (``registry demo``:
   the import, a crisis with its exposure run and roster, replies), a campaign's recipients over the crisis's
   exposed (SMS and email, materialised as the sending job does, nothing sent) and M audit events shaped as the
   API records them (a list read with filters and a purpose), sealed into the chain.
2. ``VACUUM ANALYZE``, then per table: rows; the floor, the average tuple as stored
   (``avg(pg_column_size(t.*))``, no page, index or TOAST overhead); the heap bytes per row
   (``pg_relation_size``); everything per row (``pg_total_relation_size``: heap, TOAST, indexes); rows per
   national, and what the table would weigh at 10M nationals at the same ratio (for exposures, roster
   entries, campaign recipients and audit events the ratio is this seed's: one crisis, one campaign, M events;
   docs/scaling.md turns their bytes per row into sizes per run, per campaign and per request).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

# The tables that grow with the registry and its use (docs/scaling.md), then the others worth watching.
TABLES = ["nationals", "deployments", "location_reports", "next_of_kin", "national_status_history",
          "exposures", "roster_entries", "campaign_recipients", "audit_events", "welfare_events",
          "welfare_statuses", "checkin_links", "map_cells", "jobs", "outbox"]
TEN_MILLION = 10_000_000


def migrated(url: str) -> None:
    if "bench" not in url.rsplit("/", 1)[-1]:
        raise SystemExit("refusing a database whose name lacks 'bench' (it is seeded)")
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    info = conninfo_to_dict(url)
    with psycopg.connect(make_conninfo(**{**info, "dbname": "postgres"}), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (info["dbname"],)).fetchone():
            conn.execute(f'CREATE DATABASE "{info["dbname"]}"')
    subprocess.run(["registry", "db", "upgrade"], check=True, env={**os.environ, "DATABASE_URL": url},
                   stdout=subprocess.DEVNULL)


def seed(url: str, nationals: int, audit_events: int) -> None:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT count(*) FROM nationals").fetchone()[0]:
            print("seeded already: measuring what is there", file=sys.stderr)
            return
    started = time.perf_counter()
    subprocess.run(["registry", "demo", "--nationals", str(nationals)], check=True,
                   env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL)
    print(f"demo with {nationals} nationals loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    os.environ["DATABASE_URL"] = url
    from sqlalchemy import select

    from registry import create_app
    from registry.audit import services as audit
    from registry.auth import scope
    from registry.auth.reach import Reach
    from registry.auth.services import service_user
    from registry.campaigns import audience
    from registry.campaigns.models import Campaign
    from registry.crises.models import Crisis
    from registry.crises.services import latest_run
    from registry.extensions import db
    from registry.maps import grid

    app = create_app({"REGISTRY_PROCESS": "worker"})
    with app.app_context():
        scope.use_everything()
        crisis = db.session.scalar(select(Crisis).limit(1))
        run = latest_run(crisis, succeeded=True)
        user = service_user()
        campaign = Campaign(id=uuid.uuid4(), crisis_id=crisis.id, run_id=run.id, created_by=user.id,
                            channels=["sms", "email"], templates={"en": "{given_name}, are you safe?"},
                            subject=None, audience={}, jurisdiction=None, status="queued")
        db.session.add(campaign)
        db.session.flush()
        added = audience.materialise(campaign.id, crisis.id, run.id, ["sms", "email"], {}, Reach.everywhere(),
                                     ["en"], "en")
        db.session.commit()
        print(f"campaign recipients: {added}", file=sys.stderr)
        ids = [uuid.uuid4() for _ in range(50)]
        for i in range(audit_events):
            audit.record("nationals.list", actor=user, object_type="national", object_ids=[ids[i % 50]],
                         result_count=100, purpose="evacuation planning",
                         details={"filters": ["host_country", "status"], "status": 200, "client": "10.0.0.1"})
            if i % 1000 == 999:
                db.session.commit()
        db.session.commit()
        audit.seal_all()
        grid.fold()  # the map's cells, as the worker's beat keeps them


def measure(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        nationals = conn.execute("SELECT count(*) FROM nationals").fetchone()[0]
        rows = []
        for table in TABLES:
            count, tuple_bytes, heap, total = conn.execute(
                f"SELECT count(*), coalesce(avg(pg_column_size(t.*)), 0), pg_relation_size('{table}'), "
                f"pg_total_relation_size('{table}') FROM {table} t").fetchone()
            rows.append((table, count, float(tuple_bytes), heap / count if count else 0.0,
                         total / count if count else 0.0, count / nationals if nationals else 0.0))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nationals", type=int, default=20_000)
    parser.add_argument("--audit-events", type=int, default=20_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_sizes")
    args = parser.parse_args()
    migrated(args.database_url)
    seed(args.database_url, args.nationals, args.audit_events)
    print(f"{'table':<24} {'rows':>9} {'tuple B':>8} {'heap B/row':>10} {'total B/row':>11} {'x tuple':>7} "
          f"{'rows/national':>13} {'at 10M, same ratio':>18}")
    for table, count, tuple_bytes, heap, total, ratio in measure(args.database_url):
        if count < 100:
            print(f"{table:<24} {count:>9}  (too few rows to measure)")
            continue
        projected = total * ratio * TEN_MILLION / 2 ** 30
        print(f"{table:<24} {count:>9} {tuple_bytes:>8.0f} {heap:>10.0f} {total:>11.0f} "
              f"{total / tuple_bytes:>6.1f}x {ratio:>13.3f} {projected:>15.1f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
