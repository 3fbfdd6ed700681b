"""Periodic work of the data-protection rules: sealing the audit trail, purging returned nationals, closed
crises' rosters and expired export files."""
from __future__ import annotations

from celery import shared_task
from flask import current_app

from registry.audit import services as audit
from registry.auth import scope
from registry.extensions import db
from registry.nationals.services import purge_returned


@shared_task(name="audit.seal", ignore_result=True)
def seal_audit_task() -> int:
    """Chain the audit events recorded since the last seal."""
    return audit.seal_all()


@shared_task(name="crises.refresh_active", ignore_result=True)
def refresh_active_crises_task() -> int:
    """Start a new exposure run for each active crisis whose nationals changed since its last run."""
    from registry.crises.services import refresh_active
    scope.use_everything()
    started = refresh_active()
    db.session.commit()
    return len(started)


@shared_task(name="retention.purge_returned", ignore_result=True)
def purge_returned_task() -> int:
    """Erase nationals returned longer ago than REGISTRY_RETENTION_RETURNED_DAYS; keep stubs and audit it."""
    return purge_returned_now(current_app.config["REGISTRY_RETENTION_RETURNED_DAYS"])


def purge_returned_now(days: int) -> int:
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


@shared_task(name="retention.purge_closed_crises", ignore_result=True)
def purge_closed_crises_task() -> int:
    """Delete rosters, welfare records and exposure rows of crises closed longer ago than
    REGISTRY_RETENTION_CLOSED_CRISIS_DAYS; audit it."""
    return purge_closed_crises_now(current_app.config["REGISTRY_RETENTION_CLOSED_CRISIS_DAYS"])


def purge_closed_crises_now(days: int) -> int:
    from registry.rosters.building import purge_closed
    scope.use_everything()
    ids = purge_closed(days)
    if ids:
        audit.record("retention.purge_closed_crises", object_type="crisis", object_ids=ids, result_count=len(ids),
                     details={"retention_days": days})
    db.session.commit()
    return len(ids)


@shared_task(name="exports.purge_expired", ignore_result=True)
def purge_expired_exports_task() -> int:
    """Delete worker-built export files past REGISTRY_EXPORT_TTL_SECONDS."""
    from registry.jobs.files import purge_expired
    return purge_expired()
