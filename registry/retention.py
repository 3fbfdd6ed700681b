"""The retention rules (SPEC §6b): what personal data is deleted, and when. Each purge is audited.

Run by the worker's beat (tasks/housekeeping.py) and by ``registry retention …``; each commits as it goes.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from registry.audit import services as audit
from registry.auth import scope, sessions
from registry.campaigns.services import purge_closed as purge_closed_campaigns
from registry.checkin import services as checkin
from registry.extensions import db
from registry.jobs import files, uploads
from registry.nationals.services import purge_returned
from registry.replies.services import purge_closed as purge_closed_replies
from registry.rosters.services import purge_closed


def purge_returned_nationals(days: int | None = None) -> int:
    """Erase nationals returned more than ``days`` ago (default REGISTRY_RETENTION_RETURNED_DAYS); stubs stay."""
    days = current_app.config["REGISTRY_RETENTION_RETURNED_DAYS"] if days is None else days
    scope.use_everything()
    total = 0
    while True:
        ids = purge_returned(days)
        if ids:
            audit.record("retention.purge_returned", object_type="national", object_ids=ids,
                         result_count=len(ids), details={"retention_days": days})
        db.session.commit()
        total += len(ids)
        if not ids:
            return total


def purge_closed_crises(days: int | None = None) -> int:
    """Delete the rosters, welfare records, exposure rows, SMS replies, check-in answers and links and campaign
    recipients of crises closed more than ``days`` ago (default REGISTRY_RETENTION_CLOSED_CRISIS_DAYS), and
    replies that matched no crisis received as long ago."""
    days = current_app.config["REGISTRY_RETENTION_CLOSED_CRISIS_DAYS"] if days is None else days
    scope.use_everything()
    ids = list(dict.fromkeys([*purge_closed(days), *checkin.purge_closed(days)]))
    if ids:
        audit.record("retention.purge_closed_crises", object_type="crisis", object_ids=ids, result_count=len(ids),
                     details={"retention_days": days})
    recipients = purge_closed_campaigns(days)
    if recipients:
        audit.record("retention.purge_campaign_recipients", object_type="campaign", result_count=recipients,
                     details={"retention_days": days})
    replies = purge_closed_replies(days)
    if replies:
        audit.record("retention.purge_sms_replies", object_type="sms_reply", result_count=replies,
                     details={"retention_days": days})
    db.session.commit()
    return len(ids)


def purge_stale_uploads(hours: float | None = None) -> int:
    """Delete uploaded files older than ``hours`` (default REGISTRY_UPLOAD_RETENTION_HOURS), whatever became
    of their job (a worker down for a day, a job lost): an upload is personal data waiting to be read."""
    hours = current_app.config["REGISTRY_UPLOAD_RETENTION_HOURS"] if hours is None else hours
    scope.use_everything()
    purged = uploads.purge_older_than(hours)
    if purged:
        audit.record("retention.purge_uploads", object_type="job", result_count=purged,
                     details={"retention_hours": hours})
    db.session.commit()
    return purged


def purge_expired_exports() -> int:
    """Delete worker-built export files past REGISTRY_EXPORT_TTL_SECONDS."""
    return files.purge_expired()


def purge_console_sessions() -> int:
    """Delete console sessions that ended (expired, idle past the timeout, signed out) and invitations that
    were used or expired: a day after, so that a session's end can still be looked at that day."""
    scope.use_everything()
    purged = sessions.purge_ended(grace=timedelta(days=1))
    db.session.commit()
    return purged
