"""The bulk import task."""
from celery import shared_task

from registry.imports.services import run_import
from registry.jobs.runner import run_job


@shared_task(name="imports.run_import", acks_late=True)
def run_import_task(job_id: str) -> None:
    run_job(job_id, run_import)
