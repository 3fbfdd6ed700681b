"""``/console/imports``: upload a CSV or XLSX of registrations, follow its job, see what was created and every
rejected row with its reasons; the template; the user's recent imports (SPEC §9, §4.2).

A file goes through the API's service (``registry.imports.services.create_import``) to the same worker job as
``POST /api/v1/imports``, within the same upload limit (``MAX_CONTENT_LENGTH``). Before it is queued the page
refuses, beside the file field, what the file's start already shows the worker would refuse
(``check_upload``): no file, empty, not CSV or XLSX, unreadable, columns unknown or missing. A job is shown
to its creator and to admins only, as ``GET /api/v1/jobs/{id}`` shows it; the list of recent imports is the
user's own. The page follows a running job by polling (``Sagip.pollJob``); without JavaScript, loading the
page again shows where it stands. The rejected rows are those of the job's result (row number, field,
reason: never the file's text), a page of them at a time.
"""
from __future__ import annotations

import math
import uuid

from flask import Response, current_app, g, redirect, request, url_for

from registry.audit import services as audit
from registry.console import bp
from registry.console.pages import may, refuse_with, render, requires_page
from registry.errors import NotFound, Unprocessable
from registry.imports import services
from registry.jobs import services as jobs

PERMISSION = "imports:create"  # the API's: desk officers and admins
KIND = "import"
ROWS_PER_PAGE = 100  # rejected rows shown per page
LISTED_AT_MOST = 100  # duplicates and warnings shown (the rest counted)
RECENT = 10


@bp.get("/imports")
@requires_page(PERMISSION)
def imports():
    job = _shown_job()
    if job is not None:
        audit.note(object_type="job", object_ids=[job.id])
    return render("imports.html", **_context(job))


@bp.post("/imports")
@requires_page(PERMISSION)
def upload_import():
    refuse_with("imports.html", **_context(None, failed="upload"))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Unprocessable("Choose a file to import.", errors={"file": ["Choose a CSV or XLSX file."]})
    data = upload.read()
    services.check_upload(upload.filename, data)
    job = services.create_import(upload.filename, data, g.user)
    audit.note(object_type="job", object_ids=[job.id])
    return redirect(url_for("console.imports", job=job.id, _anchor="job"), code=303)


@bp.get("/imports/template.csv")
@requires_page(PERMISSION)
def import_template():
    return Response(services.template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="sagip-import-template.csv"'})


@bp.before_request
def _too_large_upload_comes_back_to_its_form():
    """An upload over the limit is refused while the door reads the form (413), before the view runs: it is
    shown on this page, beside the file field, like the view's own refusals."""
    if request.endpoint == "console.upload_import" and request.method == "POST":
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and (request.content_length or 0) > limit:
            refuse_with("imports.html", **_context(None, failed="upload"))


def _context(job, failed: str | None = None) -> dict:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return {"job": job, "outcome": _outcome(job) if job is not None else None, "failed": failed,
            "recent_imports": _recent_imports, "page_rows": ROWS_PER_PAGE,
            "max_upload_mb": math.floor(limit / 1024 / 1024) if limit else None}


def _recent_imports() -> list:
    """The signed-in user's newest imports (called by the template: also when the upload was refused before
    the view ran)."""
    user = g.get("user")
    return jobs.recent_jobs(user, limit=RECENT, kind=KIND) if user is not None and may(PERMISSION) else []


def _shown_job():
    """The import named by ``?job=``, if the user may read it (its creator, or an admin), else 404."""
    value = request.args.get("job")
    if not value:
        return None
    try:
        job_id = uuid.UUID(value)
    except ValueError:
        raise NotFound("No such import.") from None
    job = jobs.get_job(job_id, g.user)
    if job.kind != KIND:
        raise NotFound("No such import.")
    return job


def _page_number(pages: int) -> int:
    try:
        number = int(request.args.get("page", "1"))
    except ValueError:
        number = 1
    return min(max(number, 1), pages)


def _outcome(job) -> dict | None:
    """A finished import's counts and a page of its rejected rows (each with its reasons), its duplicates and
    warnings (at most ``LISTED_AT_MOST`` each): what the job's result holds, nothing more."""
    if job.status != "succeeded":
        return None
    result = job.result or {}
    by_row: dict[int, list[dict]] = {}
    for problem in result.get("errors") or ():
        by_row.setdefault(problem["row"], []).append(problem)
    rows = sorted(by_row.items())
    pages = max(1, math.ceil(len(rows) / ROWS_PER_PAGE))
    page = _page_number(pages)
    duplicates = result.get("duplicate_rows") or []
    warnings = result.get("warnings") or []
    return {
        "created": result.get("created", 0), "rejected": result.get("rejected", 0),
        "duplicates": result.get("duplicates", 0),
        "rows": rows[(page - 1) * ROWS_PER_PAGE:page * ROWS_PER_PAGE], "listed_rows": len(rows),
        "page": page, "pages": pages, "truncated": bool(result.get("errors_truncated")),
        "duplicate_rows": duplicates[:LISTED_AT_MOST], "more_duplicates": max(len(duplicates) - LISTED_AT_MOST, 0),
        "warnings": warnings[:LISTED_AT_MOST], "more_warnings": max(len(warnings) - LISTED_AT_MOST, 0),
        "may_open_records": may("nationals:read"),
    }
