"""Housekeeping of the job machinery."""
from celery import shared_task

from registry.jobs.services import relay_outbox, rescue


@shared_task(name="jobs.relay_outbox", ignore_result=True)
def relay_outbox_task() -> int:
    """Send work whose dispatch after commit failed (broker down, process killed), and work the broker lost
    (a restarted Redis, a killed worker's running job)."""
    rescue()
    return relay_outbox()
