"""Periodic work: sealing the audit trail, re-running changed crises, and the retention rules.

Each runs in one worker at a time, however many workers and beats there are: sealing and folding take their
own advisory locks (registry/audit/services.py, registry/maps/grid.py), the others ``one_at_a_time``.
"""
from __future__ import annotations

from celery import shared_task

from registry.audit import services as audit
from registry.auth import scope
from registry.crises.services import prune_superseded, refresh_active
from registry.extensions import db
from registry.jobs.claims import one_at_a_time
from registry.maps import grid
from registry import retention


@shared_task(name="audit.seal", ignore_result=True)
def seal_audit_task() -> int:
    """Chain the audit events recorded since the last seal (and fold the refused calls counted)."""
    return audit.seal_all()


@shared_task(name="maps.fold_cell_changes", ignore_result=True)
def fold_map_cells_task() -> int:
    """Fold the map grid's committed changes into its cells (``registry.maps.grid.fold``)."""
    return grid.fold()


@shared_task(name="crises.refresh_active", ignore_result=True)
@one_at_a_time("crises.refresh_active")
def refresh_active_crises_task() -> int:
    """Start a new exposure run for each active crisis whose nationals changed since its last run."""
    scope.use_everything()
    started = refresh_active()
    db.session.commit()
    return len(started)


@shared_task(name="crises.prune_superseded", ignore_result=True)
@one_at_a_time("crises.prune_superseded")
def prune_superseded_runs_task() -> int:
    """Delete the rows of exposure runs a newer run of the same version replaced (``prune_superseded``)."""
    scope.use_everything()
    return prune_superseded()


@shared_task(name="retention.purge_returned", ignore_result=True)
@one_at_a_time("retention.purge_returned")
def purge_returned_task() -> int:
    return retention.purge_returned_nationals()


@shared_task(name="retention.purge_closed_crises", ignore_result=True)
@one_at_a_time("retention.purge_closed_crises")
def purge_closed_crises_task() -> int:
    return retention.purge_closed_crises()


@shared_task(name="retention.purge_uploads", ignore_result=True)
@one_at_a_time("retention.purge_uploads")
def purge_uploads_task() -> int:
    return retention.purge_stale_uploads()


@shared_task(name="exports.purge_expired", ignore_result=True)
@one_at_a_time("exports.purge_expired")
def purge_expired_exports_task() -> int:
    return retention.purge_expired_exports()


@shared_task(name="retention.purge_console_sessions", ignore_result=True)
@one_at_a_time("retention.purge_console_sessions")
def purge_console_sessions_task() -> int:
    return retention.purge_console_sessions()
