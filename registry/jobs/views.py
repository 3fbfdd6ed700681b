"""``/api/v1/jobs/{id}``: the status, progress and result of background work."""
from __future__ import annotations

import uuid

from flask import Blueprint, Response, g

from registry.api import documented, dump
from registry.audit import services as audit
from registry.auth.access import requires
from registry.jobs import schemas, services

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
_JOB_OUT = schemas.JobOut()
_JOB_ACCEPTED = schemas.JobAccepted()


def accepted(job) -> Response:
    """The 202 answer of a call that started ``job``."""
    location = f"/api/v1/jobs/{job.id}"
    return dump(_JOB_ACCEPTED, {"job_id": job.id, "status": job.status}, status=202,
                headers={"Location": location})


@bp.get("/<uuid:job_id>")
@requires("authenticated")
@documented(summary="A job's status, progress and result", response=schemas.JobOut, errors=(404,))
def get_job(job_id: uuid.UUID):
    """Visible to the job's creator and to admins."""
    audit.note(object_type="job", object_ids=[job_id])
    return dump(_JOB_OUT, services.get_job(job_id, g.user))


@bp.get("/<uuid:job_id>/download")
@requires("authenticated")
@documented(summary="Download the file a job built (a large roster export)", status=200, errors=(404, 410))
def download(job_id: uuid.UUID):
    """Only for whoever started the export, until ``result.expires_at``; 410 after."""
    from registry.rosters.exports import FORMATS, open_download
    audit.note(object_type="job", object_ids=[job_id])
    job = services.get_job(job_id, g.user)
    chunks, result = open_download(job, g.user)
    audit.note(object_ids=[job_id, uuid.UUID(job.params["roster_id"])], purpose=job.params.get("purpose"),
               result_count=result["rows"], details={"format": result["format"], "delivery": "download"})
    return Response(chunks, content_type=FORMATS[result["format"]][0], headers={
        "Content-Disposition": f'attachment; filename="{result["filename"]}"'})
