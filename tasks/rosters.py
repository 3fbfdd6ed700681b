"""Roster tasks: building a roster from an exposure run, and building a large export into a file."""
from celery import shared_task

from registry.jobs.runner import run_job
from registry.rosters import build, exports


@shared_task(name="rosters.build", acks_late=True)
def build_roster_task(job_id: str) -> None:
    """Idempotent: a rerun (redelivery after a killed worker) replaces the roster's rows."""
    run_job(job_id, build.build, on_failure=build.mark_failed)


@shared_task(name="rosters.export", acks_late=True)
def export_roster_task(job_id: str) -> None:
    """Idempotent: a rerun writes the file again from the start."""
    run_job(job_id, exports.build_file)
