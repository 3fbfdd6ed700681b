"""Campaign tasks: sending a campaign (shared, resumable work) and resuming the stalled ones."""
from celery import shared_task

from registry.auth import scope
from registry.campaigns import sending
from registry.jobs.claims import one_at_a_time
from registry.jobs.runner import run_job


@shared_task(name="campaigns.send", acks_late=True)
def send_campaign_task(job_id: str) -> None:
    """Idempotent and shareable: senders claim rows under leases; a rerun sends what is left
    (registry/campaigns/sending.py)."""
    run_job(job_id, sending.send_campaign, on_failure=sending.mark_failed)


@shared_task(name="campaigns.resume", ignore_result=True)
@one_at_a_time("campaigns.resume")
def resume_campaigns_task() -> int:
    """Re-dispatch the campaigns whose sender went quiet (a killed worker)."""
    scope.use_everything()
    return len(sending.resume_stalled())
