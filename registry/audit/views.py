"""``/api/v1/audit``: the audit trail, for auditors and admins."""
from __future__ import annotations

from registry.audit import schemas, services
from registry.auth.access import limited, requires
from registry.web.openapi import ApiBlueprint

bp = ApiBlueprint("audit", __name__, url_prefix="/audit", description="The audit trail (SPEC §6b)")


@bp.get("")
@requires("audit:read")
@limited("bulk")
@bp.arguments(schemas.AuditQuery, location="query")
@bp.response(200, schemas.AuditPage)
def list_events(args):
    """The audit trail, newest first.

    Filters: ``object_id``, ``actor``, ``action``, ``object_type``, ``outcome``, ``purpose_contains``,
    ``since``, ``until``. Reading the trail is itself recorded in it.
    """
    args.pop("purpose", None)
    if "purpose_contains" in args:
        args["purpose"] = args.pop("purpose_contains")
    page = services.list_events(**args)
    services.note(object_type="audit_event", result_count=page["total"],
                  details={"filters": sorted(k for k in args if k not in ("limit", "cursor"))})
    return page
