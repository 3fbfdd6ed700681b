"""``registry audit …``: verify (and seal) the audit trail's hash chain."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from registry.audit import services


@click.group()
def audit():
    """The audit trail."""


@audit.command("verify")
@with_appcontext
def verify():
    """Recompute the hash chain: exit 0 when intact, 1 naming the first bad entry."""
    result = services.verify(progress=lambda n: click.echo(f"  {n} entries checked", err=True))
    if result.ok:
        click.echo(f"audit trail intact: {result.checked} sealed entries verified, "
                   f"{result.unsealed} not sealed yet")
        return
    click.echo(f"audit trail BROKEN: {result.problem}", err=True)
    click.echo(f"first bad entry: {result.first_bad}; {result.checked} entries before it verified", err=True)
    sys.exit(1)


@audit.command("seal")
@with_appcontext
def seal():
    """Seal the events recorded since the last seal (the worker does this every few seconds)."""
    click.echo(f"sealed {services.seal_all()} event(s)")
