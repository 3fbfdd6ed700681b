"""``/api/v1/codes/{list}``: the common code lists (SPEC §11), readable by every role."""
from __future__ import annotations

from flask import Response

from registry.auth.access import requires
from registry.codes import schemas, services
from registry.web.openapi import ApiBlueprint, errors

bp = ApiBlueprint("codes", __name__, url_prefix="/codes", description="Common code lists (SPEC §11)")


@bp.get("/<string:list_name>")
@requires("codes:read")
@bp.response(200, schemas.CodeListOut)
@errors(404)
def code_list(list_name: str):
    """A code list: ``countries`` (ISO 3166-1 with aliases), ``regions`` (UN M49 per country), ``occupations``
    (ISCO-08 groups with titles), ``languages`` (ISO 639), ``legal_statuses`` or ``vulnerabilities``.

    Answers ``{"list", "items": [{"code", "name", …}], "source", "version"}``; an unknown list is a 404 naming the
    lists. The lists are static: built once per process.
    """
    return Response(services.code_list_json(list_name), mimetype="application/json",
                    headers={"Cache-Control": "private, max-age=3600"})
