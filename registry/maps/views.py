"""``/api/v1/map/nationals``: the map of nationals, clustered per view in PostGIS (``registry.maps.grid``)."""
from __future__ import annotations

from flask import g

from registry.audit import services as audit
from registry.auth.access import requires
from registry.maps import schemas, services
from registry.web.openapi import ApiBlueprint

bp = ApiBlueprint("map", __name__, url_prefix="/map", description="The map of nationals (SPEC §9)")


@bp.get("/nationals")
@requires("map:read")
@bp.arguments(schemas.MapQuery, location="query")
@bp.response(200, schemas.MapView)
def nationals_map(args):
    """Nationals in a view (bounding box and zoom), clustered by the server.

    Cells of ``90 / 2^zoom`` degrees (about 64 px): each populated cell is a cluster with its count and the
    mean position of its people; from zoom 12 a cell holding one person is a point with the national's id
    (no names). ``total`` is the sum. Counts include only the caller's reach (an embassy officer: their
    jurisdiction, whoever else is in the box) and the filters ``status``, ``vulnerability``, ``certainty``.
    A bad box, or one of more than 4096 cells at its zoom, is refused (422, ``errors.bbox``).
    """
    args.pop("purpose", None)
    answer = services.clusters_for(g.user, **args)
    filters = sorted(k for k in args if k not in ("bbox", "zoom"))
    audit.note(object_type="national", object_ids=[p["id"] for p in answer["points"]], result_count=answer["total"],
               details={"map": {"zoom": answer["zoom"], "filters": filters}})
    return answer
