"""The one door of the API: every call is authenticated, run, and ended here.

``api_call`` wraps every ``/api/v1`` view (``install``): it authenticates the
caller and checks the query string, runs the view (the role check, parsing,
the service, the answer), then ends the call once — committed together with
its audit event, or rolled back with its refusal recorded in a transaction
of its own. Refusals before anyone is known (401) and 429s are counted per
address (and user) per minute in one row (``audit.count_refused_call``), so
a flood of bogus calls cannot grow the trail a row per call. Views and
services never commit.
"""
from __future__ import annotations

import logging
from functools import wraps

from flask import Flask, current_app, g
from sqlalchemy.exc import SQLAlchemyError

from registry.audit import services as audit
from registry.auth.access import authenticate
from registry.errors import ServiceUnavailable
from registry.extensions import db
from registry.web import parsing, problems
from registry.web.openapi import API_PREFIX, PUBLIC_ENDPOINTS

log = logging.getLogger(__name__)
COUNTED_STATUSES = frozenset({401, 429})


def install(app: Flask) -> None:
    """Wrap every authenticated ``/api/v1`` view in ``api_call``."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX + "/") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        if not getattr(view, "api_call", False):
            app.view_functions[rule.endpoint] = api_call(view)


def api_call(view):
    @wraps(view)
    def call(*args, **kwargs):
        try:
            authenticate()
            parsing.check_query()
            g.purpose = parsing.request_purpose()
            response = current_app.make_response(view(*args, **kwargs))
        except Exception as exc:  # every refusal and every bug ends here, answered as a problem
            return _refused(exc)
        audit.record_request(status=response.status_code)
        db.session.commit()  # the call's work and its event, or neither
        return response

    call.api_call = True
    return call


def _refused(exc: Exception):
    db.session.rollback()
    error = problems.as_api_error(exc)
    if error is None:
        return problems.unexpected(exc)
    if isinstance(error, ServiceUnavailable):
        return problems.problem(error)  # the database is away: nothing can be recorded
    try:
        if error.status in COUNTED_STATUSES:
            audit.count_refused_call(status=error.status)
        else:
            audit.record_request(status=error.status)
        db.session.commit()
    except SQLAlchemyError as failure:
        db.session.rollback()
        log.error("could not record a refused request: %s", type(failure).__name__)
    return problems.problem(error)
