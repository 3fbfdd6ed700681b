"""``/console/nationals/{id}``: a national's record (SPEC §9), as the API's GET shows it to the role, with
their location history (a table, always, and the points on a small map when scripts run), deployments,
household, the crises they were exposed in and their welfare history.

Outside the caller's reach the record is a 404 page, recorded like the API's refusal; every read is
recorded with the ids of the people it shows.
"""
from __future__ import annotations

import uuid

from flask import g

from registry.audit import services as audit
from registry.auth.reach import Reach
from registry.console import bp
from registry.console.nationals import forms, history
from registry.console.pages import may, render, requires_page
from registry.nationals import services

TEMPLATE = "nationals_record.html"


@bp.get("/nationals/<uuid:national_id>", endpoint="national")
@requires_page("nationals:read")
def national(national_id: uuid.UUID):
    audit.note(object_type="national", object_ids=[national_id])
    found = services.get_national(national_id, g.user)
    role = g.user.role
    household = services.household_members(found, g.user)
    audit.note(object_ids=[national_id, *(member.id for member in household)],
               details={"household_members": len(household)})
    locations = services.location_history(found)
    return render(
        TEMPLATE, record=services.as_seen_by(found, role), deployments=services.deployments_of(found, role),
        locations=locations, household=[services.as_seen_by(m, role, documents=False) for m in household],
        exposures=history.exposures_of(found.id) if may("exposure:read") else None,
        welfare=history.welfare_of(found.id) if may("rosters:read") else None,
        points=[{"lat": p["lat"], "lon": p["lon"], "precision_m": p["precision_m"], "source": p["source"],
                 "reported_at": p["reported_at"].isoformat()} for p in locations],
        labels=forms, may_register=may("nationals:write"), jurisdiction_only=not Reach.of(g.user).is_everywhere)
