"""``/api/v1/nationals``: register, read, list, search, update, erase, locate."""
from __future__ import annotations

import uuid

from flask import Response, g

from registry import idempotency
from registry.audit import services as audit
from registry.auth import visibility
from registry.auth.access import limited, requires
from registry.errors import BadRequest
from registry.nationals import schemas, services
from registry.web.openapi import ApiBlueprint, errors

bp = ApiBlueprint("nationals", __name__, url_prefix="/nationals", description="Nationals abroad (SPEC §4.2)")


def national_out(national, role: str, **extra) -> dict:
    """The national as ``role`` may see it (``services.as_seen_by``, the console's too), with ``extra``."""
    return {**services.as_seen_by(national, role), **extra}


def _note_page(page: dict, filters: dict) -> None:
    audit.note(object_type="national", object_ids=[n.id for n in page["items"]], result_count=page["total"],
               details={"filters": sorted(k for k, v in filters.items() if v is not None)})


@bp.post("")
@requires("nationals:write")
@bp.arguments(schemas.NationalCreate, example=schemas.NATIONAL_EXAMPLE)
@bp.response(201, schemas.NationalCreated, headers={"Location": {"schema": {"type": "string"}}})
@errors(409)
def create_national(data):
    """Register a national.

    Without ``location`` the host city (else the host country's reference point) is geocoded. Same
    passport and nationality → 409; likely duplicates are reported in ``possible_duplicates``. Accepts
    ``Idempotency-Key``.
    """
    earlier = idempotency.earlier_answer(g.user.id)
    if earlier:
        # Only the record's id is kept with the key (no personal data at rest in clear):
        # the replay answers with the record as it is now.
        national = services.get_national(uuid.UUID(earlier[1]["id"]), g.user)
        audit.note(object_type="national", object_ids=[national.id], details={"idempotent_replay": True})
        return _created(national, services.possible_duplicates(national, g.user), status=earlier[0])
    national, duplicates, geocoding = services.create_national(data, g.user)
    audit.note(object_type="national", object_ids=[national.id])
    idempotency.remember_answer(g.user.id, 201, {"id": str(national.id)})
    return _created(national, duplicates, geocoding=geocoding)


def _created(national, duplicates: list[dict], status: int = 201, geocoding: dict | None = None):
    return (national_out(national, g.user.role, possible_duplicates=duplicates, geocoding=geocoding), status,
            {"Location": f"/api/v1/nationals/{national.id}"})


@bp.get("")
@requires("nationals:read")
@limited("bulk")
@bp.arguments(schemas.NationalListQuery, location="query")
@bp.response(200, schemas.NationalPage)
def list_nationals(args):
    """List nationals, oldest registration first.

    Filters ``host_country``, ``city``, ``status``, ``vulnerability``; an embassy officer gets their
    jurisdiction only.
    """
    args.pop("purpose", None)
    visibility.check_filters(g.user.role, {"vulnerability": "vulnerabilities"} if args.get("vulnerability") else {})
    page = services.list_nationals(g.user, **args)
    _note_page(page, {k: v for k, v in args.items() if k not in ("limit", "cursor")})
    page["items"] = [national_out(n, g.user.role) for n in page["items"]]
    return page


@bp.post("/search")
@requires("nationals:read")
@limited("bulk")
@bp.arguments(schemas.SearchQuery, location="query")
@bp.arguments(schemas.SearchIn, example={"q": "maria dela cruz", "limit": 20})
@bp.response(200, schemas.NationalSearchPage)
def search_nationals(query, args):
    """Search nationals by name or passport.

    ``q`` is tolerant of accents, case, word order and script; ``passport_number`` is exact, needs a
    ``purpose`` (query parameter; one in the body is accepted too) and counts toward the passport lookups a
    user may make per minute.
    """
    purpose = args.pop("purpose", None) or query.get("purpose")
    if args.get("passport_number"):
        if not purpose:
            raise BadRequest("A passport search needs a purpose.",
                             errors={"purpose": ["Required with passport_number (3-200 characters)."]})
        services.count_passport_lookup(g.user)
    page = services.search_nationals(g.user, **args)
    audit.note(purpose=purpose)
    _note_page(page, {k: v for k, v in args.items() if k not in ("limit", "cursor")})
    page["items"] = [national_out(n, g.user.role) for n in page["items"]]
    return page


@bp.get("/<uuid:national_id>")
@requires("nationals:read")
@bp.response(200, schemas.NationalOut)
@errors(404)
def get_national(national_id: uuid.UUID):
    """Read a national."""
    audit.note(object_type="national", object_ids=[national_id])
    return national_out(services.get_national(national_id, g.user), g.user.role)


@bp.patch("/<uuid:national_id>")
@requires("nationals:write")
@bp.arguments(schemas.NationalUpdate(partial=True))
@bp.response(200, schemas.NationalOut)
@errors(404, 409)
def update_national(data, national_id: uuid.UUID):
    """Update a national.

    Any subset of the fields; ``deployment`` fields change the current deployment.
    """
    audit.note(object_type="national", object_ids=[national_id], details={"fields": sorted(data)})
    return national_out(services.update_national(national_id, data, g.user), g.user.role)


@bp.delete("/<uuid:national_id>")
@requires("nationals:write")
@bp.response(204)
@errors(404)
def erase_national(national_id: uuid.UUID):
    """Erase a national's personal data.

    Removes personal data and location history; an id-only stub remains for the audit trail.
    """
    audit.note(object_type="national", object_ids=[national_id])
    services.erase_national(national_id, g.user)
    return Response(status=204)


@bp.post("/<uuid:national_id>/locations")
@requires("nationals:write")
@bp.arguments(schemas.LocationIn, example={"lat": 25.2048, "lon": 55.2708, "precision_m": 30})
@bp.response(201, schemas.NationalOut)
@errors(404)
def add_location(data, national_id: uuid.UUID):
    """Add a location report.

    The newest report (by ``reported_at``) becomes the current location; the history is kept.
    """
    audit.note(object_type="national", object_ids=[national_id])
    return national_out(services.add_location(national_id, data, g.user), g.user.role)
