"""The one door: every API call and every console page is authenticated, run, and ended here.

``install`` wraps every ``/api/v1`` view, every console page and every view
marked by ``registry.web.public`` (the SMS hook, the check-in pages) in the same
door (``_door``), each with its own way in and its own way of saying no
(problem+json; a page, or a redirect to sign in): authenticate the caller (a bearer token or the
console's session cookie for the API; the session for pages), run the view
(the role check, parsing, the service, the answer), then end the call once —
committed together with its audit event, or rolled back with its refusal
recorded in a transaction of its own. Refusals before anyone is known, and
every 401 and 429, are counted per address (and user) per minute in one row
(``audit.count_refused_call``), so a flood of bogus calls cannot grow the
trail a row per call. Views and services never commit.
"""
from __future__ import annotations

import logging
from functools import wraps

from flask import Flask, current_app, g
from sqlalchemy.exc import SQLAlchemyError

from registry.audit import services as audit
from registry.auth.access import authenticate
from registry.console import pages
from registry.errors import ServiceUnavailable
from registry.extensions import db
from registry.web import parsing, problems
from registry.web.openapi import API_PREFIX, PUBLIC_ENDPOINTS

log = logging.getLogger(__name__)
COUNTED_STATUSES = frozenset({401, 429})


def install(app: Flask) -> None:
    """Wrap every authenticated ``/api/v1`` view and every console page (but its static files) in the door."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "door", None):
            continue
        if getattr(view, "public_enter", None):  # registry.web.public: the hook, the check-in pages
            app.view_functions[rule.endpoint] = _door(view, view.public_enter, view.public_refuse or problems.problem,
                                                      problems.unexpected)
        elif rule.rule.startswith(API_PREFIX + "/") and rule.endpoint not in PUBLIC_ENDPOINTS:
            app.view_functions[rule.endpoint] = _door(view, _enter_api, problems.problem, problems.unexpected)
        elif rule.endpoint.startswith("console.") and rule.endpoint not in pages.UNGUARDED:
            app.view_functions[rule.endpoint] = _door(view, pages.enter, pages.refusal, pages.unexpected)


def _enter_api(view) -> bool:
    authenticate()
    parsing.check_query()
    g.purpose = parsing.request_purpose()
    return True


def _door(view, enter, refuse, unexpected):
    @wraps(view)
    def call(*args, **kwargs):
        try:
            recorded = enter(view)
            response = current_app.make_response(view(*args, **kwargs))
        except Exception as exc:  # every refusal and every bug ends here, answered the door's way
            return _refused(exc, refuse, unexpected)
        try:
            if recorded:
                audit.record_request(status=response.status_code)
            db.session.commit()  # the call's work and its event, or neither
        except Exception as exc:  # the database went away (or refused the commit) after the view had run
            return _refused(exc, refuse, unexpected)
        return response

    call.door = True
    return call


def _refused(exc: Exception, refuse, unexpected):
    db.session.rollback()
    error = problems.as_api_error(exc)
    if error is None:
        return unexpected(exc)
    if isinstance(error, ServiceUnavailable):
        return refuse(error)  # the database is away: nothing can be recorded
    try:
        if error.status in COUNTED_STATUSES or g.get("user") is None:  # anonymous: counted, never a row each
            audit.count_refused_call(status=error.status)
        else:
            audit.record_request(status=error.status)
        db.session.commit()
    except SQLAlchemyError as failure:
        db.session.rollback()
        log.error("could not record a refused request: %s", type(failure).__name__)
    return refuse(error)
