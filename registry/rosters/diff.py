"""What changed between two rosters of a crisis: people added, removed, or moved, in one statement."""
from __future__ import annotations

from sqlalchemy import text

from registry.auth.reach import Reach
from registry.errors import Unprocessable
from registry.extensions import db
from registry.rosters.models import Roster
from registry.rosters.services import require_built

# People added, removed, or moved (another point, vehicle or reason) between two rosters, in one statement;
# each list capped at :cap rows in roster order, with its full count. ``{visible}`` narrows to the caller's
# jurisdiction (and, as every read, leaves erased nationals out).
_DIFF_SQL = """
WITH pairs AS (
    SELECT coalesce(new.national_id, old.national_id) AS national_id,
           CASE WHEN old.national_id IS NULL THEN 'added' WHEN new.national_id IS NULL THEN 'removed'
                ELSE 'changed' END AS kind,
           new.assembly_point_id, new.vehicle, new.seat, coalesce(new.priority, old.priority) AS priority,
           new.unassigned_reason, coalesce(new.rank, old.rank) AS rank,
           old.assembly_point_id AS old_assembly_point_id, old.vehicle AS old_vehicle,
           old.unassigned_reason AS old_unassigned_reason
    FROM (SELECT * FROM roster_entries WHERE roster_id = :new) new
    FULL JOIN (SELECT * FROM roster_entries WHERE roster_id = :old) old ON old.national_id = new.national_id
    WHERE old.national_id IS NULL OR new.national_id IS NULL
       OR old.assembly_point_id IS DISTINCT FROM new.assembly_point_id OR old.vehicle IS DISTINCT FROM new.vehicle
       OR old.unassigned_reason IS DISTINCT FROM new.unassigned_reason
), ranked AS (
    SELECT d.*, n.family_name, n.given_names, row_number() OVER (PARTITION BY d.kind ORDER BY d.rank) AS place,
           count(*) OVER (PARTITION BY d.kind) AS total
    FROM pairs d JOIN nationals n ON n.id = d.national_id AND n.erased_at IS NULL {visible}
)
SELECT r.*, p.name AS assembly_point, op.name AS old_assembly_point,
       coalesce(x.zone, ox.zone) AS zone, coalesce(x.distance_km, ox.distance_km) AS distance_km
FROM ranked r
LEFT JOIN roster_points p ON p.roster_id = :new AND p.assembly_point_id = r.assembly_point_id
LEFT JOIN roster_points op ON op.roster_id = :old AND op.assembly_point_id = r.old_assembly_point_id
LEFT JOIN exposures x ON x.run_id = :new_run AND x.national_id = r.national_id
LEFT JOIN exposures ox ON ox.run_id = :old_run AND ox.national_id = r.national_id
WHERE r.place <= :cap
ORDER BY r.kind, r.place
"""
DIFF_CAP = 10_000


def diff(roster: Roster, other: Roster, user, *, cap: int = DIFF_CAP) -> dict:
    """What changed from ``other`` (an earlier roster of the crisis) to ``roster``: people ``added``,
    ``removed`` and ``changed`` (another point, vehicle or reason), each in roster order and capped at
    ``cap`` rows, with every list's full size in ``counts``."""
    require_built(roster)
    require_built(other)
    if other.crisis_id != roster.crisis_id:
        raise Unprocessable("Both rosters must belong to the same crisis.", errors={"from": ["Another crisis."]})
    visible, reach_params = Reach.of(user).sql("n.jurisdiction_country")
    found = db.session.execute(text(_DIFF_SQL.format(visible=visible)), {
        "new": roster.id, "old": other.id, "new_run": roster.run_id, "old_run": other.run_id, "cap": cap,
        **reach_params}).mappings().all()
    result = {"from": other.id, "to": roster.id, "added": [], "removed": [], "changed": [],
              "counts": {"added": 0, "removed": 0, "changed": 0}}
    for row in found:
        result[row["kind"]].append(dict(row))
        result["counts"][row["kind"]] = row["total"]
    result["truncated"] = any(result["counts"][kind] > len(result[kind]) for kind in ("added", "removed", "changed"))
    return result


