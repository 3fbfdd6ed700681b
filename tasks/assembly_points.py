"""Assembly points from a file: read by a worker, never by the API."""
from celery import shared_task

from registry.assembly_points.services import run_import
from registry.jobs.runner import run_job


@shared_task(name="assembly_points.import", acks_late=True)
def import_points_task(job_id: str) -> None:
    run_job(job_id, run_import)
