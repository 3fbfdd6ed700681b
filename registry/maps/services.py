"""The map of nationals: clusters per view for a caller (their reach), and the open crises drawn over it."""
from __future__ import annotations

import json

from sqlalchemy import text

from registry.auth import visibility
from registry.auth.reach import Reach
from registry.extensions import db
from registry.maps import grid

# Outlines for display only: simplified to about a pixel at zoom 10; rings as geodesic buffers.
DISPLAY_TOLERANCE_DEG = 0.001


def clusters_for(user, *, bbox: str, zoom: int, status: str | None = None, vulnerability: str | None = None,
                 certainty: str | None = None) -> dict:
    """The view's clusters as ``user`` may count them (their reach; a filter on a field their role does not
    see is refused). :raises Unprocessable: a bad box. :raises Forbidden: such a filter."""
    visibility.check_filters(user.role, {"vulnerability": "vulnerabilities"} if vulnerability else {})
    view = grid.view_of(bbox, zoom)
    return grid.clusters(view, Reach.of(user), status=status, vulnerability=vulnerability, certainty=certainty)


_OVERLAY_SQL = text("""
SELECT c.id, c.name, c.kind, c.severity, v.zones_km,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(v.geom, :tolerance), 5) AS area,
       (SELECT json_agg(json_build_object('km', z, 'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(
                ST_Buffer(v.geom::geography, z * 1000)::geometry, :tolerance), 5)::json) ORDER BY z)
        FROM unnest(v.zones_km) z) AS rings
FROM crises c JOIN crisis_versions v ON v.crisis_id = c.id AND v.version = c.version
WHERE c.status = 'active'
ORDER BY c.created_at DESC, c.id
LIMIT :limit
""")


def open_crises(limit: int = 20) -> list[dict]:
    """The active crises' current areas and rings (GeoJSON geometries), newest first."""
    rows = db.session.execute(_OVERLAY_SQL, {"tolerance": DISPLAY_TOLERANCE_DEG, "limit": limit})
    return [{"id": str(row.id), "name": row.name, "kind": row.kind, "severity": row.severity,
             "zones_km": list(row.zones_km), "area": json.loads(row.area), "rings": row.rings or []}
            for row in rows]
