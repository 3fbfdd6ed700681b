"""The service's logs: one JSON object per line (``REGISTRY_LOG_FORMAT=json``, the default in production) or
plain text (the default in development), written the same way by the API, the workers and the command line.

A record carries what identifies the work, never the people in it: a request's id, method, route (the URL
rule, ``/api/v1/nationals/<uuid:national_id>``, never the path or its query), status and duration; a job's
id and kind. An exception is written as its type and frames, never its message: a message may quote a value
(a name, a passport number). Each process installs its handler once, at its entry point (``configure``:
``registry.wsgi``, ``tasks``, the ``registry`` command); ``create_app`` does not, so tests keep their own.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone

from flask import g, has_request_context, request

FORMATS = ("json", "text")
SERVICE_LOGGERS = ("registry", "celery")
# Fields a record may carry besides its message (``extra=`` or the context below), in this order.
FIELDS = ("request_id", "method", "route", "status", "duration_ms", "job_id", "job_kind", "job_status",
          "attempt")
_job: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("sagip_log_job", default=None)


def resolve_format(value: str | None, env: str) -> str:
    """``REGISTRY_LOG_FORMAT`` read: ``json`` or ``text``; empty means json in production, text otherwise.
    :raises ValueError: another value."""
    chosen = (value or "").strip().lower() or ("json" if env == "production" else "text")
    if chosen not in FORMATS:
        raise ValueError(f"REGISTRY_LOG_FORMAT must be json or text, not {value!r}")
    return chosen


def format_from_environment(environ) -> str:
    """The format a process configured by the environment alone uses (gunicorn's master)."""
    return resolve_format(environ.get("REGISTRY_LOG_FORMAT"), environ.get("REGISTRY_ENV", "development"))


@contextmanager
def job_context(job_id, kind: str):
    """Records logged inside carry the job's id and kind."""
    token = _job.set((str(job_id), kind))
    try:
        yield
    finally:
        _job.reset(token)


class ContextFilter(logging.Filter):
    """Adds the current request's id and route, or the current job's id and kind, to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            if getattr(record, "request_id", None) is None:
                record.request_id = g.get("request_id")
            if getattr(record, "route", None) is None and request.url_rule is not None:
                record.route = request.url_rule.rule
        job = _job.get()
        if job is not None and getattr(record, "job_id", None) is None:
            record.job_id, record.job_kind = job
        return True


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit the message: the message alone
        return str(record.msg)


def _frames(record: logging.LogRecord) -> tuple[str, str] | None:
    """(exception type, frames) of a record's exception: never its message."""
    if not record.exc_info or record.exc_info[0] is None:
        return None
    kind, _, tb = record.exc_info
    return kind.__name__, "".join(traceback.format_tb(tb))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message and the fields of ``FIELDS`` present."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                 .replace("+00:00", "Z"),
                 "level": record.levelname, "logger": record.name, "message": _message(record)}
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        frames = _frames(record)
        if frames:
            entry["error"], entry["traceback"] = frames
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value …``, the fields of ``FIELDS`` present; exceptions as in JSON."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {_message(record)}"
        fields = " ".join(f"{field}={getattr(record, field)}" for field in FIELDS
                          if getattr(record, field, None) is not None)
        frames = _frames(record)
        return line + (f" [{fields}]" if fields else "") + (f"\n{frames[0]}\n{frames[1]}" if frames else "")


def handler(log_format: str, stream=None) -> logging.Handler:
    """A handler writing ``log_format`` records to ``stream`` (stderr), with the request and job context."""
    result = logging.StreamHandler(stream if stream is not None else sys.stderr)
    result.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    result.addFilter(ContextFilter())
    result.sagip = True
    return result


def configure(log_format: str, level: str | int) -> None:
    """The process's logging: one ``handler`` on the root logger (replacing one installed before); the
    service's loggers and Celery's at ``level``, the libraries' from WARNING (font subsetting and the like
    are chatty at INFO)."""
    root = logging.getLogger()
    for existing in [h for h in root.handlers if getattr(h, "sagip", False)]:
        root.removeHandler(existing)
    root.addHandler(handler(log_format))
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # Python's warnings too (logger py.warnings), not bare lines on stderr
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).setLevel(level)
