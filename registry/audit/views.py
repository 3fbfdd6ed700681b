"""``/api/v1/audit``: the audit trail, for auditors and admins."""
from __future__ import annotations

from flask import Blueprint

from registry.api import documented, dump, load_query
from registry.audit import schemas, services
from registry.auth.access import limited, requires

bp = Blueprint("audit", __name__, url_prefix="/audit")
_QUERY = schemas.AuditQuery()
_PAGE_OUT = schemas.AuditPage()


@bp.get("")
@requires("audit:read")
@limited("bulk")
@documented(summary="The audit trail", query=schemas.AuditQuery, response=schemas.AuditPage, errors=(400, 429))
def list_events():
    """Newest first. Filters: ``object_id``, ``actor``, ``action``, ``since``, ``until``. Reading the
    trail is itself recorded in it."""
    args = load_query(_QUERY)
    purpose = args.pop("purpose", None)
    page = services.list_events(**args)
    services.note(object_type="audit_event", result_count=page["total"], purpose=purpose,
                  details={"filters": sorted(k for k in args if k not in ("limit", "cursor"))})
    return dump(_PAGE_OUT, page)
