"""``/healthz`` (the process answers) and ``/readyz`` (database, PostGIS and broker answer)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from registry.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        checks["postgis"] = db.session.execute(text("SELECT postgis_lib_version()")).scalar()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
        db.session.rollback()
    try:
        with current_app.extensions["celery"].connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unavailable ({type(exc).__name__})"
    ready = checks["database"] == "ok" and checks["broker"] == "ok"
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
