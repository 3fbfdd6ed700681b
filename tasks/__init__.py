"""Celery tasks. ``celery -A tasks worker`` (or ``registry worker``) finds the app here.

The Flask app and its Celery app are created on first access of
``tasks.celery``, not on import, so tests can import task modules and bind
them to an app of their own.
"""
from __future__ import annotations

from celery.signals import worker_process_init

_flask_app = None


def flask_app():
    global _flask_app
    if _flask_app is None:
        from registry import create_app
        # The workers' database role bypasses row-level security (registry/auth/scope.py, migration 0004).
        _flask_app = create_app({"REGISTRY_PROCESS": "worker"})
    return _flask_app


def __getattr__(name: str):
    if name == "celery":
        return flask_app().extensions["celery"]
    raise AttributeError(name)


@worker_process_init.connect
def _fresh_connections_after_fork(**kwargs):
    """A forked worker process must not share its parent's database sockets."""
    if _flask_app is not None:
        from registry.extensions import db
        with _flask_app.app_context():
            db.engine.dispose(close=False)
