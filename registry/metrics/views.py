"""``GET /metrics`` (SPEC §12): for an admin's token (or console session), or for anyone where
``REGISTRY_METRICS_PUBLIC=1``.

It passes the one door like every call (``registry.web.public``): an admin's scrape is recorded in the audit
trail like any other call made with a token, a refused one too (401 counted per address, 403 recorded); a
public scrape has nobody to record and is not. The metrics hold counts and timings by route, job kind and
queue: no personal data.
"""
from __future__ import annotations

from flask import current_app, g

from registry.auth.access import authenticate, check_role
from registry.metrics import services
from registry.web import parsing
from registry.web.openapi import ApiBlueprint, errors, file_responses, permission_doc
from registry.web.public import door

PERMISSION = "metrics:read"

bp = ApiBlueprint("metrics", __name__, url_prefix="/metrics",
                  description="The service's metrics in the Prometheus text format (SPEC §12)")


def enter_metrics(view) -> bool:
    """An admin's token or session, or nobody where the metrics are public. Whether the call is recorded."""
    if current_app.config["REGISTRY_METRICS_PUBLIC"]:
        g.user = None
        parsing.check_query()
        return False
    authenticate()
    parsing.check_query()
    g.purpose = parsing.request_purpose()
    check_role(PERMISSION)
    return True


def _permission(view):
    """The permission in the document (``x-permission``) and on the view, as ``@requires`` would set them."""
    view.permission = PERMISSION
    permission_doc(view, PERMISSION)
    return view


@bp.route("", methods=["GET"])
@_permission
@door(enter_metrics)
@file_responses("text/plain", description="the metrics, Prometheus text exposition format")
@errors(401, 403, 429)
def metrics():
    """Requests by route and status, latency histograms by route, jobs by kind and status, job run times,
    queue lengths (Prometheus text format).

    An admin's token, or anyone where ``REGISTRY_METRICS_PUBLIC=1``. Routes are URL rules (no ids or tokens);
    jobs and queues are read from the database and the broker at each scrape.
    """
    body, content_type = services.exposition()
    return current_app.response_class(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
