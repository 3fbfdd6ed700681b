"""The Celery application, bound to a Flask app: tasks run inside its app context."""
from __future__ import annotations

from celery import Celery, Task
from flask import Flask

# Redis re-delivers an unacknowledged task (its worker died) after REGISTRY_VISIBILITY_TIMEOUT_S
# (default an hour; the longest task, a 1M-row import or exposure run, takes minutes).
RETENTION_EVERY_S = 6 * 3600
EXPORT_PURGE_EVERY_S = 300
UPLOAD_PURGE_EVERY_S = 3600
# Superseded exposure runs lose their rows 15 minutes after their successor succeeded (crises.services).
PRUNE_RUNS_EVERY_S = 300
TASK_MODULES = ["tasks.jobs", "tasks.imports", "tasks.housekeeping", "tasks.exposure", "tasks.rosters",
                "tasks.assembly_points", "tasks.campaigns", "tasks.statistics"]
# A sending campaign whose heartbeat is older than registry.campaigns.sending.STALE_S is resumed this often.
CAMPAIGN_RESUME_EVERY_S = 10


def init_celery(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=app.config["REDIS_URL"],
        # No result backend: results and progress live in the jobs table.
        broker_connection_retry_on_startup=True,
        # A worker whose Redis went away keeps trying to reconnect for as long as it takes (Celery's default
        # gives up after 100 tries and stops the worker); the outbox relay re-sends what Redis lost.
        broker_connection_max_retries=None,
        broker_connection_timeout=2,
        broker_transport_options={
            "visibility_timeout": app.config["REGISTRY_VISIBILITY_TIMEOUT_S"],
            # Look for overdue unacknowledged tasks every few seconds (kombu's default sweep is ~100 s).
            "unacked_restore_throttle": 1,
            "unacked_restore_interval": max(1, min(10, app.config["REGISTRY_VISIBILITY_TIMEOUT_S"] // 3)),
        },
        task_acks_late=True,  # a task is acknowledged when done, so a killed worker's task is re-run
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        beat_schedule={
            "relay-outbox": {"task": "jobs.relay_outbox",
                             "schedule": app.config["REGISTRY_OUTBOX_RELAY_SECONDS"]},
            "recover-jobs": {"task": "jobs.recover_orphaned",
                             "schedule": app.config["REGISTRY_OUTBOX_RELAY_SECONDS"]},
            "seal-audit": {"task": "audit.seal", "schedule": app.config["REGISTRY_AUDIT_SEAL_SECONDS"]},
            "fold-map-cells": {"task": "maps.fold_cell_changes", "schedule": app.config["REGISTRY_MAP_FOLD_SECONDS"]},
            "refresh-crises": {"task": "crises.refresh_active",
                               "schedule": app.config["REGISTRY_EXPOSURE_REFRESH_SECONDS"]},
            "prune-superseded-runs": {"task": "crises.prune_superseded", "schedule": PRUNE_RUNS_EVERY_S},
            "purge-returned": {"task": "retention.purge_returned", "schedule": RETENTION_EVERY_S},
            "purge-closed-crises": {"task": "retention.purge_closed_crises", "schedule": RETENTION_EVERY_S},
            "purge-exports": {"task": "exports.purge_expired", "schedule": EXPORT_PURGE_EVERY_S},
            "purge-uploads": {"task": "retention.purge_uploads", "schedule": UPLOAD_PURGE_EVERY_S},
            "resume-campaigns": {"task": "campaigns.resume", "schedule": CAMPAIGN_RESUME_EVERY_S},
            "purge-console-sessions": {"task": "retention.purge_console_sessions", "schedule": RETENTION_EVERY_S},
        },
        # A child that grew past half its ceiling during a task is replaced after it (KiB).
        worker_max_memory_per_child=app.config["REGISTRY_WORKER_MAX_MEMORY_MB"] * 512,
        include=TASK_MODULES,
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
