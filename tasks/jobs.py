"""Housekeeping of the job machinery: the outbox relay, and jobs whose worker died."""
from celery import shared_task

from registry.jobs.claims import one_at_a_time
from registry.jobs.services import recover_orphaned, relay_outbox, rescue


@shared_task(name="jobs.relay_outbox", ignore_result=True)
@one_at_a_time("jobs.relay_outbox")
def relay_outbox_task() -> int:
    """Send work whose dispatch after commit failed (broker down, process killed), and work a restarted
    broker lost."""
    rescue()
    return relay_outbox()


@shared_task(name="jobs.recover_orphaned", ignore_result=True)
@one_at_a_time("jobs.recover_orphaned")
def recover_orphaned_task() -> int:
    """Send again the jobs left running by a worker that died (nobody holds their claim)."""
    return recover_orphaned()
