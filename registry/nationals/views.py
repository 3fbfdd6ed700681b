"""``/api/v1/nationals``: register, read, list, search, update, erase, locate."""
from __future__ import annotations

import json
import uuid

from flask import Blueprint, Response, g, request

from registry import idempotency
from registry.api import documented, dump, load_json, load_query
from registry.auth.access import requires
from registry.extensions import db
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


def national_out(national, **extra) -> dict:
    data = {c: getattr(national, c) for c in schemas.NationalOut._declared_fields
            if c not in ("deployment", "location", "next_of_kin")}
    data["deployment"] = national.deployment
    data["next_of_kin"] = national.next_of_kin
    data["location"] = services.location_of(national)
    data.update(extra)
    return data


@bp.post("")
@requires("nationals:write")
@documented(summary="Register a national", body=schemas.NationalCreate, response=schemas.NationalCreated,
            status=201, errors=(400, 409, 413, 415, 422))
def create_national():
    """Without ``location`` the host country's reference point is stored. Same passport and
    nationality → 409; likely duplicates are reported in ``possible_duplicates``. Accepts
    ``Idempotency-Key``."""
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        key = idempotency.check_key(key)
        fingerprint = idempotency.request_fingerprint(request.method, request.path, request.get_data(cache=True))
        earlier = idempotency.stored_answer(g.user.id, key, fingerprint)
        if earlier:
            return Response(json.dumps(earlier[1]), status=earlier[0], mimetype="application/json")
    data = load_json(_CREATE_IN)
    national, duplicates = services.create_national(data, g.user)
    body = _CREATED_OUT.dump(national_out(national, possible_duplicates=duplicates))
    if key is not None:
        idempotency.remember(g.user.id, key, fingerprint, 201, body)
    db.session.commit()
    return Response(json.dumps(body, ensure_ascii=False), status=201, mimetype="application/json",
                    headers={"Location": f"/api/v1/nationals/{national.id}"})


@bp.get("")
@requires("nationals:read")
@documented(summary="List nationals", query=schemas.NationalListQuery, response=schemas.NationalPage)
def list_nationals():
    args = load_query(_LIST_QUERY)
    args.pop("purpose", None)
    page = services.list_nationals(g.user, **args)
    page["items"] = [national_out(n) for n in page["items"]]
    return dump(_PAGE_OUT, page)


@bp.post("/search")
@requires("nationals:read")
@documented(summary="Search nationals by name or passport", body=schemas.SearchIn, response=schemas.NationalPage,
            errors=(400, 422))
def search_nationals():
    """``q`` is tolerant of accents, case, word order and script; ``passport_number`` is exact."""
    args = load_json(_SEARCH_IN)
    args.pop("purpose", None)
    page = services.search_nationals(g.user, **args)
    page["items"] = [national_out(n) for n in page["items"]]
    return dump(_PAGE_OUT, page)


@bp.get("/<uuid:national_id>")
@requires("nationals:read")
@documented(summary="Read a national", response=schemas.NationalOut, errors=(404,))
def get_national(national_id: uuid.UUID):
    return dump(_NATIONAL_OUT, national_out(services.get_national(national_id, g.user)))


@bp.patch("/<uuid:national_id>")
@requires("nationals:write")
@documented(summary="Update a national", body=schemas.NationalUpdate, response=schemas.NationalOut,
            errors=(400, 404, 409, 422))
def update_national(national_id: uuid.UUID):
    data = load_json(_UPDATE_IN)
    record = national_out(services.update_national(national_id, data, g.user))
    db.session.commit()
    return dump(_NATIONAL_OUT, record)


@bp.delete("/<uuid:national_id>")
@requires("nationals:write")
@documented(summary="Erase a national's personal data", status=204, errors=(404,))
def erase_national(national_id: uuid.UUID):
    """Removes personal data and location history; an id-only stub remains for the audit trail."""
    services.erase_national(national_id, g.user)
    db.session.commit()
    return Response(status=204)


@bp.post("/<uuid:national_id>/locations")
@requires("nationals:write")
@documented(summary="Add a location report", body=schemas.LocationIn, response=schemas.NationalOut,
            status=201, errors=(404, 422))
def add_location(national_id: uuid.UUID):
    """The newest report (by ``reported_at``) becomes the current location; the history is kept."""
    data = load_json(_LOCATION_IN)
    record = national_out(services.add_location(national_id, data, g.user))
    db.session.commit()
    return dump(_NATIONAL_OUT, record, status=201)
