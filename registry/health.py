"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database, PostGIS and broker answer).

Both say what is down. ``/healthz`` stays 200 while a dependency is down (restarting the process would not
bring the database back; it recovers by itself when it returns); ``/readyz`` is 503 with ``Retry-After``
until everything answers.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from registry.errors import ServiceUnavailable
from registry.extensions import db

bp = Blueprint("health", __name__)


def _checks() -> dict:
    checks = {}
    try:
        with db.engine.connect() as connection:
            checks["postgis"] = connection.execute(text("SELECT postgis_lib_version()")).scalar()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
    try:
        with current_app.extensions["celery"].connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unavailable ({type(exc).__name__})"
    return checks


def _down(checks: dict) -> list[str]:
    return [name for name in ("database", "broker") if checks[name] != "ok"]


@bp.get("/healthz")
def healthz():
    checks = _checks()
    return jsonify(status="ok", down=_down(checks), checks=checks)


@bp.get("/readyz")
def readyz():
    checks = _checks()
    down = _down(checks)
    response = jsonify(status="not ready" if down else "ready", down=down, checks=checks)
    if down:
        response.status_code = 503
        response.headers["Retry-After"] = ServiceUnavailable().headers["Retry-After"]
    return response
