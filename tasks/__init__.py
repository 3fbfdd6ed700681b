"""Celery tasks. ``celery -A tasks worker`` (or ``registry worker``) finds the app here.

The Flask app and its Celery app are created on first access of
``tasks.celery``, not on import, so tests can import task modules and bind
them to an app of their own.
"""
from __future__ import annotations

import resource

from celery.signals import setup_logging, worker_process_init

_flask_app = None


def flask_app():
    global _flask_app
    if _flask_app is None:
        from registry import create_app
        # The workers' database role bypasses row-level security (registry/auth/scope.py, migration 0004).
        _flask_app = create_app({"REGISTRY_PROCESS": "worker"})
        _configure_logging()  # before Celery's first words (its start-up warnings)
    return _flask_app


def __getattr__(name: str):
    if name == "celery":
        return flask_app().extensions["celery"]
    raise AttributeError(name)


@setup_logging.connect
def _logging(**kwargs):
    """The worker logs as the API does (``registry.logs``: JSON or text, no personal data) instead of Celery's
    own format. (A test's worker on an app of its own leaves logging to the tests: Celery, seeing a receiver,
    no longer takes over the root logger.)"""
    if _flask_app is not None:
        _configure_logging()


def _configure_logging() -> None:
    from registry import logs
    logs.configure(_flask_app.config["REGISTRY_LOG_FORMAT"], _flask_app.config["REGISTRY_LOG_LEVEL"])


@worker_process_init.connect
def _worker_child(**kwargs):
    """A forked worker child: its own database sockets, and a memory ceiling.

    The ceiling (RLIMIT_DATA: heap and private mappings, REGISTRY_WORKER_MAX_MEMORY_MB) turns a runaway
    job into a MemoryError that fails the job with a reason (registry/jobs/runner.py), instead of a child
    the kernel kills, re-queued for ever, or a machine out of memory. (The solo pool sends this signal in
    its own process too: a worker started by ``celery -A tasks``; tests that start a worker on an app of
    their own are left alone.)
    """
    if _flask_app is None:
        return
    app = _flask_app
    from registry.extensions import db
    with app.app_context():
        db.engine.dispose(close=False)
    limit = app.config["REGISTRY_WORKER_MAX_MEMORY_MB"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
