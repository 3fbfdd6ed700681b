"""The exposure run task: one crisis version's exposure, computed in PostGIS, committed with its job."""
from celery import shared_task

from registry.crises.services import mark_run_failed, run_exposure
from registry.extensions import db
from tasks.base import run_job


def _work(job) -> None:
    run_exposure(job)
    db.session.commit()


@shared_task(name="crises.run_exposure", acks_late=True)
def run_exposure_task(job_id: str) -> None:
    """Idempotent: a rerun (redelivery after a killed worker) replaces the run's rows."""
    try:
        run_job(job_id, _work)
    finally:
        if db.session.is_active:
            db.session.rollback()
        job_failed = _job_failed(job_id)
        if job_failed:
            mark_run_failed(job_failed)
            db.session.commit()


def _job_failed(job_id: str):
    import uuid

    from registry.jobs.models import Job
    job = db.session.get(Job, uuid.UUID(job_id))
    return job.id if job is not None and job.status == "failed" else None
