"""``registry retention …``: run a retention rule now (the worker's beat runs them every few hours)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from registry import retention as services


@click.group()
def retention():
    """The retention rules of SPEC §6b."""


@retention.command("purge")
@click.option("--days", type=int, default=None, help="Default: REGISTRY_RETENTION_RETURNED_DAYS.")
@with_appcontext
def purge(days: int | None):
    """Erase nationals returned more than DAYS ago."""
    click.echo(f"{services.purge_returned_nationals(days)} record(s) purged")


@retention.command("purge-crises")
@click.option("--days", type=int, default=None, help="Default: REGISTRY_RETENTION_CLOSED_CRISIS_DAYS.")
@with_appcontext
def purge_crises(days: int | None):
    """Delete the rosters, welfare records and exposure rows of crises closed more than DAYS ago."""
    click.echo(f"{services.purge_closed_crises(days)} closed crisis(es) purged")


@retention.command("purge-uploads")
@click.option("--hours", type=float, default=None, help="Default: REGISTRY_UPLOAD_RETENTION_HOURS.")
@with_appcontext
def purge_uploads(hours: float | None):
    """Delete uploaded files older than HOURS, whatever became of their job."""
    click.echo(f"{services.purge_stale_uploads(hours)} upload(s) deleted")
