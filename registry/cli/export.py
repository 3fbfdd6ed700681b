"""``registry export``: a roster export on the command line, with a progress bar, audited like the API's."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import click
from flask.cli import with_appcontext

from registry.audit import services as audit
from registry.auth import scope
from registry.auth.reach import Reach
from registry.auth.services import service_user
from registry.errors import ApiError
from registry.extensions import db
from registry.rosters import exports
from registry.rosters.exports import FORMATS, PAPERS
from registry.rosters.services import get_roster, require_built


@click.command("export")
@click.argument("roster_id", type=click.UUID)
@click.option("--format", "fmt", required=True, type=click.Choice(list(FORMATS)))
@click.option("--purpose", required=True, help="Why (3-200 characters); recorded in the audit trail.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: the export's name, in the current directory); '-' for stdout.")
@click.option("--paper", type=click.Choice(PAPERS), default="a4", show_default=True, help="PDF page size.")
@click.option("--role", type=click.Choice(["admin", "coordinator", "embassy"]), default="admin", show_default=True,
              help="Whose columns to export (a coordinator's file carries no medical detail).")
@click.option("--jurisdiction", default="", help="Only these host countries' people, e.g. AE,QA.")
@click.option("--assembly-point", "point", type=click.UUID, default=None,
              help="Only the people placed at this assembly point (its manifests).")
@with_appcontext
def export(roster_id: uuid.UUID, fmt: str, purpose: str, output: Path | None, paper: str, role: str,
           jurisdiction: str, point: uuid.UUID | None):
    """Export a roster (every national, placed or not) to a file."""
    if not 3 <= len(purpose) <= 200:
        raise click.BadParameter("3 to 200 characters.", param_hint="--purpose")
    countries = sorted({c.strip().upper() for c in jurisdiction.split(",") if c.strip()}) or None
    reach = Reach.from_params(countries)
    scope.use_everything()
    try:
        roster = get_roster(roster_id)
        require_built(roster)
    except ApiError as exc:
        raise click.ClickException(exc.detail) from None
    total = exports.count_rows(roster, reach, point=point)
    try:
        exports.check_size(fmt, total)
    except ApiError as exc:
        raise click.ClickException(exc.detail) from None
    target = output or Path(exports.filename(roster, fmt))
    to_stdout = str(target) == "-"
    sink = click.get_binary_stream("stdout") if to_stdout else _private_file(target)
    try:
        with click.progressbar(length=max(total, 1), label=f"exporting {total:,} rows as {fmt}",
                               file=click.get_text_stream("stderr")) as bar:
            shown = [0]

            def progress(done: int) -> None:
                step = min(done, total) - shown[0]
                if step > 0:
                    bar.update(step)
                    shown[0] += step

            rows = exports.write(sink, roster, fmt, role, reach, paper=paper, point=point, progress=progress,
                                 rows_expected=total)
            progress(total)
    finally:
        if not to_stdout:
            sink.close()
    audit.record("rosters.export", actor=service_user(), object_type="roster", object_ids=[roster.id],
                 result_count=rows, purpose=purpose,
                 details={"format": fmt, "role": role, "jurisdiction": countries, "delivery": "cli",
                          "assembly_point_id": str(point) if point else None})
    db.session.commit()
    if not to_stdout:
        click.echo(f"{rows:,} rows written to {target}", err=True)


def _private_file(path: Path):
    """Open for writing, readable by this user only (the file holds personal data)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
