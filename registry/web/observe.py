"""Every request, observed: an id (``X-Request-ID`` in the answer), its count and latency in the metrics
(``/metrics``), and one log line (logger ``registry.request``).

Requests are named by their route, the URL rule (``/api/v1/nationals/<uuid:national_id>``,
``/checkin/<token>``), never by their path: no id, token or search term reaches a label or a log; a path
that matches no rule is ``(unmatched)``. The latency is the time to the answer's headers (a streamed
export's rows are not in it). The id is made here, never taken from the client (a header the client writes
could carry anything into the logs).

Under gunicorn with several processes the counters live in ``PROMETHEUS_MULTIPROC_DIR``
(``registry/gunicorn_conf.py``), which must be set before this module is first imported.
"""
from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, g, request
from prometheus_client import Counter, Histogram

UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter("sagip_http_requests", "HTTP requests answered, by method, route (URL rule) and status",
                   ["method", "route", "status"])
LATENCY = Histogram("sagip_http_request_duration_seconds",
                    "Time to the answer's headers, by method and route (URL rule)", ["method", "route"],
                    buckets=LATENCY_BUCKETS_S)
log = logging.getLogger("registry.request")


def install(app: Flask) -> None:
    """Observe every request of ``app``: the first hook before it, the last after it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)  # after-request hooks run last-first


def _start() -> None:
    g.request_id = uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish(response):
    started = g.get("request_started")
    duration_s = time.perf_counter() - started if started is not None else None
    method = request.method if request.method in METHODS else "OTHER"
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    status = response.status_code
    REQUESTS.labels(method, route, str(status)).inc()
    if duration_s is not None:
        LATENCY.labels(method, route).observe(duration_s)
    request_id = g.get("request_id")
    if request_id:
        response.headers["X-Request-ID"] = request_id
    duration_ms = round(duration_s * 1000, 1) if duration_s is not None else None
    log.info("%s %s %s", method, route, status,
             extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms})
    return response
