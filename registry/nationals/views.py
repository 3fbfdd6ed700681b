"""``/api/v1/nationals``: register, read, list, search, update, erase, locate."""
from __future__ import annotations

import json
import uuid

from flask import Blueprint, Response, g, request

from registry import idempotency
from registry.api import documented, dump, load_json, load_query
from registry.audit import services as audit
from registry.auth.access import limited, requires
from registry.errors import BadRequest
from registry.nationals import schemas, services

bp = Blueprint("nationals", __name__, url_prefix="/nationals")

# Schema instances are built once: building one per request costs more than using it.
_CREATE_IN = schemas.NationalCreate()
_CREATED_OUT = schemas.NationalCreated()
_LIST_QUERY = schemas.NationalListQuery()
_PAGE_OUT = schemas.NationalPage()
_SEARCH_IN = schemas.SearchIn()
_NATIONAL_OUT = schemas.NationalOut()
_LOCATION_IN = schemas.LocationIn()
_UPDATE_IN = schemas.NationalUpdate(partial=True)


# Fields a role does not need and so never receives (SPEC §6b). Coordinators plan
# evacuations: they get names, contacts, vulnerabilities (priorities) and passports
# (manifests), not legal status, national ID or consent records.
HIDDEN_FIELDS: dict[str, frozenset[str]] = {
    "coordinator": frozenset({"national_id_number", "consent", "deployment.legal_status",
                              "deployment.recruitment_agency"}),
}
_COLUMNS = tuple(c for c in schemas.NationalOut._declared_fields
                 if c not in ("deployment", "location", "next_of_kin", *services.DOCUMENTS))
_DEPLOYMENT_COLUMNS = tuple(schemas.DeploymentOut._declared_fields)


def national_out(national, role: str, **extra) -> dict:
    """The national as ``role`` may see it: decrypted documents, without the fields it may not see."""
    data = national_fields(national, role)
    hidden = HIDDEN_FIELDS.get(role, frozenset())
    data.update((k, v) for k, v in services.document_numbers(national).items() if k not in hidden)
    data.update(extra)
    return data


def national_fields(national, role: str) -> dict:
    """Every field ``role`` may see but the encrypted document numbers."""
    hidden = HIDDEN_FIELDS.get(role, frozenset())
    data = {c: getattr(national, c) for c in _COLUMNS if c not in hidden}
    deployment = national.deployment
    data["deployment"] = {c: getattr(deployment, c) for c in _DEPLOYMENT_COLUMNS
                          if f"deployment.{c}" not in hidden} if deployment is not None else None
    data["next_of_kin"] = national.next_of_kin
    data["location"] = services.location_of(national)
    return data


def _note_page(page: dict, purpose: str | None, filters: dict) -> None:
    audit.note(object_type="national", object_ids=[n.id for n in page["items"]], result_count=page["total"],
               purpose=purpose, details={"filters": sorted(k for k, v in filters.items() if v is not None)})


@bp.post("")
@requires("nationals:write")
@documented(summary="Register a national", body=schemas.NationalCreate, response=schemas.NationalCreated,
            status=201, errors=(400, 409, 413, 415, 422))
def create_national():
    """Without ``location`` the host country's reference point is stored. Same passport and
    nationality → 409; likely duplicates are reported in ``possible_duplicates``. Accepts
    ``Idempotency-Key``."""
    earlier = idempotency.earlier_answer(g.user.id)
    if earlier:
        # Only the record's id is kept with the key (no personal data at rest in clear):
        # the replay answers with the record as it is now.
        national = services.get_national(uuid.UUID(earlier[1]["id"]), g.user)
        audit.note(object_type="national", object_ids=[national.id], details={"idempotent_replay": True})
        return _created(national, services.possible_duplicates(national, g.user), status=earlier[0])
    data = load_json(_CREATE_IN)
    national, duplicates, geocoding = services.create_national(data, g.user)
    audit.note(object_type="national", object_ids=[national.id])
    idempotency.remember_answer(g.user.id, 201, {"id": str(national.id)})
    return _created(national, duplicates, geocoding=geocoding)


def _created(national, duplicates: list[dict], status: int = 201, geocoding: dict | None = None) -> Response:
    body = _CREATED_OUT.dump(national_out(national, g.user.role, possible_duplicates=duplicates,
                                          geocoding=geocoding))
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json",
                    headers={"Location": f"/api/v1/nationals/{national.id}"})


@bp.get("")
@requires("nationals:read")
@limited("bulk")
@documented(summary="List nationals", query=schemas.NationalListQuery, response=schemas.NationalPage,
            errors=(429,))
def list_nationals():
    args = load_query(_LIST_QUERY)
    purpose = args.pop("purpose", None)
    page = services.list_nationals(g.user, **args)
    _note_page(page, purpose, {k: v for k, v in args.items() if k not in ("limit", "cursor")})
    page["items"] = [national_out(n, g.user.role) for n in page["items"]]
    return dump(_PAGE_OUT, page)


@bp.post("/search")
@requires("nationals:read")
@limited("bulk")
@documented(summary="Search nationals by name or passport", body=schemas.SearchIn, response=schemas.NationalPage,
            errors=(400, 422, 429))
def search_nationals():
    """``q`` is tolerant of accents, case, word order and script; ``passport_number`` is exact and
    needs a ``purpose`` (recorded in the audit trail)."""
    args = load_json(_SEARCH_IN)
    purpose = args.pop("purpose", None)
    if args.get("passport_number") and not purpose:
        raise BadRequest("A passport search needs a purpose.",
                         errors={"purpose": ["Required with passport_number (3-200 characters)."]})
    page = services.search_nationals(g.user, **args)
    _note_page(page, purpose, {k: v for k, v in args.items() if k not in ("limit", "cursor")})
    page["items"] = [national_out(n, g.user.role) for n in page["items"]]
    return dump(_PAGE_OUT, page)


@bp.get("/<uuid:national_id>")
@requires("nationals:read")
@documented(summary="Read a national", response=schemas.NationalOut, errors=(404,))
def get_national(national_id: uuid.UUID):
    audit.note(object_type="national", object_ids=[national_id], purpose=_purpose_arg())
    return dump(_NATIONAL_OUT, national_out(services.get_national(national_id, g.user), g.user.role))


@bp.patch("/<uuid:national_id>")
@requires("nationals:write")
@documented(summary="Update a national", body=schemas.NationalUpdate, response=schemas.NationalOut,
            errors=(400, 404, 409, 422))
def update_national(national_id: uuid.UUID):
    audit.note(object_type="national", object_ids=[national_id])
    data = load_json(_UPDATE_IN)
    audit.note(details={"fields": sorted(data)})
    return dump(_NATIONAL_OUT, national_out(services.update_national(national_id, data, g.user), g.user.role))


@bp.delete("/<uuid:national_id>")
@requires("nationals:write")
@documented(summary="Erase a national's personal data", status=204, errors=(404,))
def erase_national(national_id: uuid.UUID):
    """Removes personal data and location history; an id-only stub remains for the audit trail."""
    audit.note(object_type="national", object_ids=[national_id], purpose=_purpose_arg())
    services.erase_national(national_id, g.user)
    return Response(status=204)


@bp.post("/<uuid:national_id>/locations")
@requires("nationals:write")
@documented(summary="Add a location report", body=schemas.LocationIn, response=schemas.NationalOut,
            status=201, errors=(404, 422))
def add_location(national_id: uuid.UUID):
    """The newest report (by ``reported_at``) becomes the current location; the history is kept."""
    audit.note(object_type="national", object_ids=[national_id])
    data = load_json(_LOCATION_IN)
    return dump(_NATIONAL_OUT, national_out(services.add_location(national_id, data, g.user), g.user.role),
                status=201)


def _purpose_arg() -> str | None:
    """The optional ``purpose`` query parameter (recorded when given). :raises BadRequest:"""
    purpose = request.args.get("purpose")
    if purpose is not None and not 3 <= len(purpose.strip()) <= 200:
        raise BadRequest("The purpose must be 3-200 characters.", errors={"purpose": ["3-200 characters."]})
    return purpose.strip() if purpose else None
