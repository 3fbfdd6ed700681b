"""Roster tasks: building a roster from an exposure run, and building a large export into a file."""
import uuid

from celery import shared_task

from registry.extensions import db
from registry.jobs.models import Job
from registry.rosters import building, exports
from tasks.base import run_job


def _build(job) -> None:
    building.build(job)
    db.session.commit()


def _export(job) -> None:
    exports.build_file(job)
    db.session.commit()


@shared_task(name="rosters.build", acks_late=True)
def build_roster_task(job_id: str) -> None:
    """Idempotent: a rerun (redelivery after a killed worker) replaces the roster's rows."""
    try:
        run_job(job_id, _build)
    finally:
        if db.session.is_active:
            db.session.rollback()
        job = db.session.get(Job, uuid.UUID(job_id))
        if job is not None and job.status == "failed":
            building.mark_failed(job.id)
            db.session.commit()


@shared_task(name="rosters.export", acks_late=True)
def export_roster_task(job_id: str) -> None:
    """Idempotent: a rerun writes the file again from the start."""
    run_job(job_id, _export)
