"""``/console/crises``: the crises, newest first, with the exposed counts the reader may see."""
from __future__ import annotations

from flask import g, request

from registry.audit import services as audit
from registry.console import bp
from registry.console.pages import may, render, requires_page
from registry.crises import services as crises
from registry.crises.models import STATUSES
from registry.errors import Unprocessable

PAGE_ROWS = 50


@bp.get("/crises", endpoint="crises")
@requires_page("crises:read")
def crises_list():
    status = request.args.get("status", "").strip()
    if status and status not in STATUSES:
        raise Unprocessable("Unknown status.", errors={"status": [f"One of: {', '.join(STATUSES)}."]})
    page = crises.list_crises(status=status or None, limit=PAGE_ROWS, cursor=request.args.get("cursor") or None)
    audit.note(object_type="crisis", object_ids=[c.id for c in page["items"]], result_count=page["total"])
    rows = [(crisis, crises.visible_counts(crisis, g.user), crises.latest_run(crisis)) for crisis in page["items"]]
    return render("crises_list.html", rows=rows, page=page, shown_status=status, statuses=STATUSES,
                  may_declare=may("crises:write"), cursor=request.args.get("cursor"))

