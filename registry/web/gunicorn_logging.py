"""Gunicorn's access log without check-in tokens or query strings (``registry.web.access_log``): the logger
class ``registry/gunicorn_conf.py`` names."""
from __future__ import annotations

from gunicorn.glogging import Logger

from registry.web.access_log import redact


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key]) if key != "q" else ""
        return atoms
