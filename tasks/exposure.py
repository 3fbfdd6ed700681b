"""The exposure run task: one crisis version's exposure, computed in PostGIS, committed with its job."""
from celery import shared_task

from registry.crises.services import mark_run_failed, run_exposure
from registry.jobs.runner import run_job


@shared_task(name="crises.run_exposure", acks_late=True)
def run_exposure_task(job_id: str) -> None:
    """Idempotent: a rerun (redelivery after a killed worker) replaces the run's rows."""
    run_job(job_id, run_exposure, on_failure=mark_run_failed)
