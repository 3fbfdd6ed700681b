"""``registry audit …``: verify (and seal) the audit trail's hash chain; checkpoints kept outside the database."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from registry.audit import services
from registry.auth.services import service_user
from registry.extensions import db


@click.group()
def audit():
    """The audit trail."""


@audit.command("verify")
@click.option("--checkpoint", "checkpoint_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A document printed by `registry audit checkpoint` and kept outside the service: the chain must "
                   "still reach its head. May be given several times.")
@with_appcontext
def verify(checkpoint_files: tuple[Path, ...]):
    """Recompute the hash chain: exit 0 when intact, 1 naming the first bad entry, 2 for a refused checkpoint."""
    kept = []
    for path in checkpoint_files:
        try:
            kept.append(services.read_checkpoint(path.read_bytes(), str(path)))
        except OSError as exc:
            click.echo(f"checkpoint {path} refused: it cannot be read ({exc.strerror})", err=True)
            sys.exit(2)
        except services.CheckpointRefused as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
    result = services.verify(progress=lambda n: click.echo(f"  {n} entries checked", err=True), checkpoints=kept)
    if result.ok:
        reached = f"; it reaches the head of {result.checkpoints} checkpoint(s) kept outside the database" \
            if kept else ""
        click.echo(f"audit trail intact: {result.checked} sealed entries verified, "
                   f"{result.unsealed} not sealed yet{reached}")
        return
    click.echo(f"audit trail BROKEN: {result.problem}", err=True)
    click.echo(f"first bad entry: {result.first_bad}; {result.checked} entries before it verified", err=True)
    sys.exit(1)


@audit.command("seal")
@with_appcontext
def seal():
    """Seal the events recorded since the last seal (the worker does this every few seconds)."""
    click.echo(f"sealed {services.seal_all()} event(s)")


@audit.command("checkpoint")
@with_appcontext
def checkpoint():
    """Seal what is unsealed, then print the signed chain head (one JSON document) for the auditor to keep.

    Kept outside the service, it lets `registry audit verify --checkpoint FILE`
    catch events rewritten by someone who also recomputed the chain.
    """
    sealed = services.seal_all()
    try:
        document = services.checkpoint(actor=service_user())
    except services.CheckpointRefused as exc:
        db.session.rollback()
        click.echo(f"no checkpoint: {exc}", err=True)
        sys.exit(1)
    db.session.commit()  # the act is recorded before the document is handed out
    click.echo(f"sealed {sealed} event(s); checkpoint through chain entry {document['through_seq']}: keep this "
               "document outside the service", err=True)
    click.echo(json.dumps(document, indent=2))
