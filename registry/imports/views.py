"""``/api/v1/imports``: upload a CSV or XLSX of registrations; the template."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from registry.api import documented
from registry.auth.access import requires
from registry.errors import Unprocessable
from registry.audit import services as audit
from registry.imports import services
from registry.jobs.schemas import JobAccepted
from registry.jobs.views import accepted

bp = Blueprint("imports", __name__, url_prefix="/imports")


@bp.post("")
@requires("imports:create")
@documented(summary="Import a CSV or XLSX of registrations", response=JobAccepted, status=202,
            errors=(413, 422))
def create_import():
    """Multipart upload, field ``file``. Answers 202 with ``job_id``; the job's result lists
    ``created``, ``duplicates``, ``rejected`` and per-row ``errors``. Bad rows never stop good ones."""
    upload = request.files.get("file")
    if upload is None:
        raise Unprocessable("Upload the file as multipart/form-data, field 'file'.",
                            errors={"file": ["Missing."]})
    job = services.create_import(upload.filename or "upload", upload.read(), g.user)
    audit.note(object_type="job", object_ids=[job.id])
    return accepted(job)


@bp.get("/template.csv")
@requires("imports:create")
@documented(summary="The import template (CSV header and one example row)")
def template():
    return Response(services.template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="sagip-import-template.csv"'})
