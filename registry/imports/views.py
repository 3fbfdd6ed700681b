"""``/api/v1/imports``: upload a CSV or XLSX of registrations; the template."""
from __future__ import annotations

from flask import Response, g

from registry.audit import services as audit
from registry.auth.access import requires
from registry.imports import schemas, services
from registry.jobs.schemas import JobAccepted
from registry.jobs.views import accepted
from registry.web.openapi import ApiBlueprint

bp = ApiBlueprint("imports", __name__, url_prefix="/imports", description="Bulk registration files (SPEC §4.2)")


@bp.post("")
@requires("imports:create")
@bp.arguments(schemas.UploadIn, location="files")
@bp.response(202, JobAccepted, headers={"Location": {"schema": {"type": "string"}}})
def create_import(files):
    """Import a CSV or XLSX of registrations.

    Multipart upload, field ``file``. Answers 202 with ``job_id``; the job's result lists ``created``,
    ``duplicates``, ``rejected`` and per-row ``errors``. Bad rows never stop good ones. The file is read by a
    worker, never here.
    """
    upload = files["file"]
    job = services.create_import(upload.filename or "upload", upload.read(), g.user)
    audit.note(object_type="job", object_ids=[job.id])
    return accepted(job)


@bp.get("/template.csv")
@requires("imports:create")
@bp.response(200, {"type": "string"}, content_type="text/csv")
def template():
    """The import template: the CSV header and one example row."""
    return Response(services.template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="sagip-import-template.csv"'})
