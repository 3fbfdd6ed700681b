"""Access logs name the route, never a secret in the path: a check-in link's token (SPEC §10) becomes
``/checkin/<token>``, and query strings are dropped (SPEC §4: personal data never reaches the logs).

Applied to Werkzeug's request log (the development server and the tests' live server) by a filter on its
logger (``install``), and to gunicorn's access log by ``registry.web.gunicorn_logging``.
"""
from __future__ import annotations

import logging
import re

# A check-in token: the one path segment after /checkin/ that is not one of the pages' own words.
_TOKEN = re.compile(r"/checkin/(?!register/|static/)[^/?#\s\"]+")
_QUERY = re.compile(r"\?[^\s\"]*")


def redact(text: str) -> str:
    """``text`` (a path, a request line) with check-in tokens replaced and query strings removed."""
    return _QUERY.sub("", _TOKEN.sub("/checkin/<token>", text))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message through ``redact`` (Werkzeug logs the request line as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or "/checkin/" in str(record.msg) or "?" in str(record.msg):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                return True
            record.msg, record.args = redact(message), ()
        return True


def install() -> None:
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactingFilter) for f in werkzeug.filters):
        werkzeug.addFilter(RedactingFilter())
