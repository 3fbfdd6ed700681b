"""``/api/v1/jobs/{id}``: the status, progress and result of background work, and the files it built."""
from __future__ import annotations

import uuid

from flask import Response, g

from registry.audit import services as audit
from registry.auth.access import requires
from registry.jobs import schemas, services
from registry.jobs.files import open_download
from registry.web.openapi import ApiBlueprint, errors, file_responses

# What a job-built file can be (roster exports: csv, hxl, xlsx, pdf, geojson, kml, pfif).
DOWNLOAD_TYPES = ("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/pdf",
                  "application/geo+json", "application/vnd.google-earth.kml+xml", "application/xml",
                  "application/octet-stream")
bp = ApiBlueprint("jobs", __name__, url_prefix="/jobs", description="Background work (SPEC §4, §5)")


def accepted(job):
    """The 202 answer of a call that started ``job``."""
    return {"job_id": job.id, "status": job.status}, 202, {"Location": f"/api/v1/jobs/{job.id}"}


@bp.get("/<uuid:job_id>")
@requires("authenticated")
@bp.response(200, schemas.JobOut)
@errors(404)
def get_job(job_id: uuid.UUID):
    """A job's status, progress and result.

    Visible to the job's creator and to admins.
    """
    audit.note(object_type="job", object_ids=[job_id])
    return services.get_job(job_id, g.user)


@bp.get("/<uuid:job_id>/download")
@requires("authenticated")
@file_responses(*DOWNLOAD_TYPES)
@errors(404, 410)
def download(job_id: uuid.UUID):
    """Download the file a job built (a large roster export, a migration-profile report).

    Only for whoever started the job, until ``result.expires_at``; 410 after.
    """
    audit.note(object_type="job", object_ids=[job_id])
    job = services.get_job(job_id, g.user)
    chunks, result = open_download(job, g.user)
    built_from = [uuid.UUID(job.params["roster_id"])] if job.params.get("roster_id") else []
    audit.note(object_ids=[job_id, *built_from], purpose=job.params.get("purpose"),
               result_count=result.get("rows"), details={"format": result["format"], "delivery": "download"})
    return Response(chunks, content_type=result.get("media_type", "application/octet-stream"), headers={
        "Content-Disposition": f'attachment; filename="{result["filename"]}"'})
