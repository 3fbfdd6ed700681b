"""Alembic environment: the schema comes only from these migrations."""
from __future__ import annotations

import logging

from alembic import context
from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from registry.extensions import include_object

log = logging.getLogger("alembic.env")
config = context.config


def run_migrations_online() -> None:
    db = current_app.extensions["migrate"].db
    # Not the service's engine: its connections switch to the unprivileged application role
    # (which the first migration has yet to create); the migrations run as the owner.
    engine = create_engine(db.engine.url, poolclass=NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=db.metadata, include_object=include_object,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported.")
run_migrations_online()
