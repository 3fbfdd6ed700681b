"""The web console (SPEC §9): server-rendered pages for the people of SPEC §1, at ``/console/``.

Pages call the same services as the API and pass the same door (``registry.boundary``): the same roles,
reach, visibility, audit and commit. Their scripts call ``/api/v1`` with the session cookie and the
session's CSRF token. JavaScript and CSS are the service's own files and packages installed by pip
(Leaflet from ``xstatic-leaflet``): nothing comes from a CDN, and the maps work offline.
"""
from __future__ import annotations

from flask import Blueprint, Flask, redirect

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static",
               static_url_path="/static")


def init_console(app: Flask) -> None:
    from registry.console import pages  # noqa: F401  (headers, cookies, the vendored assets)
    from registry.console import home, maps, signin  # noqa: F401  (the pages register their routes)
    # The pages register their routes; one line each.
    from registry.console import assembly_points  # noqa: F401
    from registry.console import nationals  # noqa: F401
    from registry.console import rosters  # noqa: F401
    from registry.console import imports  # noqa: F401
    from registry.console import calls  # noqa: F401
    from registry.console import campaigns  # noqa: F401
    from registry.console import users  # noqa: F401
    from registry.console import audit_trail  # noqa: F401
    from registry.console import crises  # noqa: F401
    from registry.console import nationals_map  # noqa: F401
    from registry.console import inbox  # noqa: F401
    from registry.console import verification  # noqa: F401
    from registry.console import statistics  # noqa: F401
    app.register_blueprint(bp)
    app.add_url_rule("/", "root", lambda: redirect("/console/"))
