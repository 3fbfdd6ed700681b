"""``/console/rosters/<id>``: a roster as its reader may see it (SPEC §9): the build (polled until it ends),
capacity used and vehicles per assembly point, the unassigned and why, the people per point, manifests to
download, and what changed since an earlier roster of the crisis.

The page is inside a crisis: its reads are recorded with the purpose "crisis response: <crisis name>"
without asking; a download asks for its own purpose. Everything comes from the services the API uses, with
the caller's reach (an embassy officer: their jurisdiction's people and counts) and the fields their role
may see (``registry.auth.visibility``).
"""
from __future__ import annotations

import uuid

from flask import Response, g, redirect, request, url_for
from marshmallow import ValidationError

from registry.audit import services as audit
from registry.auth import visibility
from registry.auth.access import limited
from registry.auth.reach import Reach
from registry.console import bp
from registry.console.pages import render, requires_page
from registry.crises import services as crises
from registry.errors import NotFound, Unprocessable
from registry.jobs import services as jobs
from registry.rosters import diff, entries, exports, services
from registry.rosters.models import PRIORITIES, Roster
from registry.rosters.schemas import ExportQuery

PAGE_ROWS = 50
DIFF_ROWS = 100  # per list; the counts say how many there are in all
EXPORT_FIELDS = ("purpose", "format", "paper", "assembly_point_id")
FORMAT_LABELS = {"pdf": "PDF (printable manifests)", "csv": "CSV", "xlsx": "Excel (XLSX)",
                 "hxl": "HXL (CSV with hashtags)", "geojson": "GeoJSON", "kml": "KML", "pfif": "PFIF 1.4 (XML)"}
PAPER_LABELS = {"a4": "A4", "letter": "Letter"}
REASONS = {  # why a person has no place: (short label, what it means)
    "no_capacity_in_reach": ("no capacity in reach", "the points within the distance are full, or too full for "
                                                     "the whole household"),
    "beyond_max_distance": ("beyond the maximum distance", "no assembly point within the roster's distance"),
    "location_unknown": ("location unknown", "only the country is known: no point can be said to be near"),
    "household_larger_than_vehicle": ("household larger than a vehicle", "a household rides together and does "
                                                                         "not fit one vehicle"),
    "no_assembly_points": ("no assembly points", "the roster considered no active assembly point"),
}
PRIORITY_LABELS = {"medical_or_disability": "medical or disability", "pregnant": "pregnant",
                   "minor_or_elderly": "minor or elderly", "standard": "standard"}
_NEW_DOWNLOAD = {"purpose": "", "format": "pdf", "paper": "a4", "assembly_point_id": ""}


@bp.get("/rosters/<uuid:roster_id>")
@requires_page("rosters:read")
def roster(roster_id: uuid.UUID):
    return render("roster.html", **_page(services.get_roster(roster_id), _NEW_DOWNLOAD))


@bp.post("/rosters/<uuid:roster_id>/export")
@requires_page("rosters:read")
@limited("bulk")
def roster_export(roster_id: uuid.UUID):
    """A manifest download, as ``GET /api/v1/rosters/{id}/export`` makes it: the file itself, or (large) a
    job whose progress the roster page shows. Its purpose is asked and recorded."""
    roster = services.get_roster(roster_id)
    form = {name: request.form.get(name, "").strip() for name in EXPORT_FIELDS}
    try:
        args = _export_args(form)
        made = exports.export(roster, args, g.user)
    except Unprocessable as invalid:  # the page again, the problem beside its field; no file is made
        return render("roster.html", status=422, error=invalid, **_page(roster, form))
    audit.note(object_type="roster", purpose=args["purpose"], result_count=made.rows, details=made.details)
    if made.job is not None:
        audit.note(object_ids=[roster.id, made.job.id])
        return redirect(url_for("console.roster", roster_id=roster.id, export_job=made.job.id, _anchor="downloads"),
                        code=303)
    audit.note(object_ids=[roster.id])
    return Response(made.content, content_type=made.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})


def _export_args(form: dict) -> dict:
    """The download form read by the API's own schema. :raises Unprocessable:"""
    try:
        return ExportQuery().load({name: value for name, value in form.items() if value})
    except ValidationError as invalid:
        errors = dict(invalid.messages)
        if "purpose" in errors and not form["purpose"]:
            errors["purpose"] = ["Say why you download these people's data (3-200 characters); it is recorded in "
                                 "the audit trail."]
        raise Unprocessable("The download needs a purpose and a format.", errors=errors) from None


def _page(roster: Roster, download: dict) -> dict:
    """What the page shows, as the caller may see it; its reads noted with the crisis's purpose."""
    crisis = crises.get_crisis(roster.crisis_id)
    out = services.roster_out(roster, g.user)
    role = g.user.role
    context = {"roster": roster, "crisis": crisis, "counts": out["counts"], "params": roster.params,
               "everywhere": Reach.of(g.user).is_everywhere, "download": download,
               "formats": {fmt: FORMAT_LABELS.get(fmt, fmt) for fmt in sorted(exports.FORMATS, key=_format_order)},
               "papers": PAPER_LABELS, "reasons": REASONS, "priorities": PRIORITY_LABELS,
               "priority_names": {n: PRIORITY_LABELS[label] for n, label in PRIORITIES.items()},
               "sees": set(visibility.visible(role, ("vulnerabilities", "date_of_birth"))),
               "build_job": _build_job(roster), "export_job": _export_job(roster), "page_rows": PAGE_ROWS}
    shown: list[uuid.UUID] = []
    if roster.status == "succeeded":
        points = out["counts"]["by_assembly_point"]
        chosen = _uuid_arg("point")
        if chosen is None:
            chosen = next((p["assembly_point_id"] for p in points if p["assigned"]),
                          points[0]["assembly_point_id"] if points else None)
        people = (entries.list_entries(roster, g.user, assembly_point_id=chosen, limit=PAGE_ROWS,
                                       cursor=request.args.get("cursor") or None) if chosen else None)
        unassigned = entries.list_entries(roster, g.user, assigned=False, limit=PAGE_ROWS,
                                          cursor=request.args.get("ucursor") or None)
        earlier = [r for r in services.list_rosters(crisis.id, limit=100)["items"]
                   if r.number < roster.number and r.status == "succeeded"]
        compare = _uuid_arg("compare")
        changes = diff.diff(roster, services.get_roster(compare), g.user, cap=DIFF_ROWS) if compare else None
        for page in (people, unassigned):
            if page:
                page["items"] = [visibility.strip(role, row) for row in page["items"]]
                shown.extend(row["national_id"] for row in page["items"])
        if changes:
            shown.extend(row["national_id"] for kind in ("added", "removed", "changed") for row in changes[kind])
        context.update(point=chosen, point_name=next((p["name"] for p in points if p["assembly_point_id"] == chosen),
                                                     None),
                       people=people, unassigned=unassigned, earlier=earlier, compare=compare, changes=changes,
                       cursor=request.args.get("cursor"), ucursor=request.args.get("ucursor"))
    audit.note(object_type="roster", object_ids=[roster.id, crisis.id, *dict.fromkeys(shown)],
               result_count=len(set(shown)), purpose=f"crisis response: {crisis.name}")
    return context


def _format_order(fmt: str) -> tuple[int, str]:
    """PDF first (what is printed), then the others as labelled here, then any format added since."""
    return (list(FORMAT_LABELS).index(fmt) if fmt in FORMAT_LABELS else len(FORMAT_LABELS), fmt)


def _uuid_arg(name: str) -> uuid.UUID | None:
    """A query parameter naming a record. :raises NotFound: not an id (as a path that is not one)."""
    value = request.args.get(name)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No such {name}.") from None


def _build_job(roster: Roster):
    """The roster's build job when the caller may follow it (whoever asked for the roster, admins)."""
    if roster.job_id is None:
        return None
    try:
        return jobs.get_job(roster.job_id, g.user)
    except NotFound:
        return None


def _export_job(roster: Roster):
    """The caller's export job of this roster named by ``?export_job=`` (a large download), if any."""
    job_id = _uuid_arg("export_job")
    if job_id is None:
        return None
    job = jobs.get_job(job_id, g.user)
    if job.kind != "roster_export" or job.params.get("roster_id") != str(roster.id):
        raise NotFound("No such job.")
    return job
