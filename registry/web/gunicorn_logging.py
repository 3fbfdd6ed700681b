"""Gunicorn's logs without check-in tokens or query strings (``registry.web.access_log``), in the service's
format (``registry.logs``: JSON where ``REGISTRY_LOG_FORMAT`` says so): the logger class
``registry/gunicorn_conf.py`` names."""
from __future__ import annotations

import os

from gunicorn.glogging import Logger

from registry import logs
from registry.web.access_log import redact


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        if logs.format_from_environment(os.environ) == "json":
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(logs.JsonFormatter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key]) if key != "q" else ""
        return atoms
