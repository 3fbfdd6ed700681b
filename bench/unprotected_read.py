"""Bench only: the service, plus the single-national read without decryption and without its audit event.

``bench/api.py --wsgi-app bench.unprotected_read:app --scenarios read,read-unprotected`` serves both
from the same gunicorn, so the difference between the two rows is what encryption and the audit trail
cost a read. The token check and row-level security stay in both. Never deployed.
"""
from __future__ import annotations

import uuid

from flask import g

from registry import create_app
from registry.auth.access import authenticate
from registry.nationals import schemas, services, views

app = create_app()
_NATIONAL_OUT = schemas.NationalOut()


@app.get("/bench/unprotected/nationals/<uuid:national_id>")
def unprotected_read(national_id: uuid.UUID):
    authenticate()
    national = services.get_national(national_id, g.user)
    return _NATIONAL_OUT.dump(views.national_fields(national, g.user.role))
