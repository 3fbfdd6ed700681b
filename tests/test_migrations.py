"""The schema comes from the migrations: they run from empty to head and back down."""
from __future__ import annotations

import psycopg
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from registry.config import database_url
from tests.conftest import TEST_DATABASE_URL, make_app, recreate_database

SCRATCH_URL = TEST_DATABASE_URL + "_migrations"  # beside the session's database, whatever its name


def test_migrations_run_up_down_and_up_again():
    recreate_database(SCRATCH_URL)
    app = make_app(SQLALCHEMY_DATABASE_URI=database_url(SCRATCH_URL))
    from registry.extensions import db
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"nationals", "deployments", "location_reports", "next_of_kin", "users", "api_tokens", "jobs",
                "outbox", "countries", "idempotency_keys", "import_files"} <= tables
        downgrade(revision="base")
        db.engine.dispose()
        left = set(inspect(db.engine).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
        assert left == set()
        upgrade()
        db.engine.dispose()
    with psycopg.connect(SCRATCH_URL) as conn:
        assert conn.execute("SELECT count(*) FROM countries").fetchone()[0] > 240
    admin = SCRATCH_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{SCRATCH_URL.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_the_models_match_the_migrations(app):
    """Autogenerate finds nothing to do: models and migrations describe one schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from registry.extensions import db, include_object
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
