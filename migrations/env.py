"""Alembic environment: the schema comes only from these migrations."""
from __future__ import annotations

import logging

from alembic import context
from flask import current_app

log = logging.getLogger("alembic.env")
config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    # PostGIS and its extensions own these tables.
    return not (type_ == "table" and name in {"spatial_ref_sys"})


def run_migrations_online() -> None:
    db = current_app.extensions["migrate"].db
    with db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=db.metadata, include_object=include_object,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported.")
run_migrations_online()
