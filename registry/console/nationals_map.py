"""``/console/map``: the nationals of the caller's reach on a map, clustered by the server, with filters
(status, vulnerability, certainty) and the open crises' areas and rings drawn over them (SPEC §9).

The page carries the filters (a GET form: they are not personal data) and the crises' outlines; its script
asks ``GET /api/v1/map/nationals`` for the clusters of each view (debounced, a stale request aborted), so
the counts come from the API's one path: the same reach, the same audit. A filter the role may not use
(vulnerability, for coordinators) is not offered, and a bad filter in the URL comes back beside its field.
"""
from __future__ import annotations

from flask import g, request

from registry.auth import visibility
from registry.auth.reach import Reach
from registry.console import bp
from registry.console.pages import refuse_with, render, requires_page
from registry.errors import Unprocessable
from registry.maps import grid, services
from registry.maps.grid import CERTAINTIES
from registry.nationals.models import NATIONAL_STATUSES, VULNERABILITIES

FILTERS = ("status", "vulnerability", "certainty")


@bp.get("/map", endpoint="map")
@requires_page("map:read")
def nationals_map():
    may_filter_vulnerability = "vulnerabilities" not in visibility.hidden_from(g.user.role)
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    context = {"filters": filters, "statuses": NATIONAL_STATUSES, "certainties": CERTAINTIES,
               "vulnerabilities": VULNERABILITIES if may_filter_vulnerability else (), "crises": [], "bounds": None}
    refuse_with("map.html", **context)
    _check(filters, may_filter_vulnerability)
    context["crises"] = services.open_crises()
    context["bounds"] = grid.extent(Reach.of(g.user))
    return render("map.html", **context)


def _check(filters: dict, may_filter_vulnerability: bool) -> None:
    """:raises Unprocessable: a filter value the API would refuse, beside its field."""
    allowed = {"status": NATIONAL_STATUSES, "certainty": CERTAINTIES,
               "vulnerability": VULNERABILITIES if may_filter_vulnerability else ()}
    errors = {name: ["Choose one of the offered values."] for name, value in filters.items()
              if value and value not in allowed[name]}
    if errors:
        raise Unprocessable("A filter is not valid.", errors=errors)
