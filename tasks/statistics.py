"""Statistics tasks: building the migration-profile report (SPEC §11) into a file."""
from celery import shared_task

from registry.jobs.runner import run_job
from registry.statistics import profile_files


@shared_task(name=profile_files.TASK, acks_late=True)
def profile_task(job_id: str) -> None:
    """Idempotent: a rerun writes the file again from the start."""
    run_job(job_id, profile_files.build_file)
