"""``registry profile``: the migration-profile report of a year (SPEC §11), as the service (every country)."""
from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import with_appcontext

from registry.audit import services as audit
from registry.auth import scope
from registry.auth.reach import Reach
from registry.auth.services import service_user
from registry.errors import ApiError
from registry.extensions import db
from registry.statistics import profile_files
from registry.statistics.profile import build


@click.command("profile")
@click.option("--year", required=True, type=int, help="The year (from 1990 to this one).")
@click.option("--format", "fmt", required=True, type=click.Choice(list(profile_files.FORMATS)))
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write; '-' for stdout.")
@with_appcontext
def profile(year: int, fmt: str, output: Path):
    """Write the migration profile of YEAR: stocks by destination, sex, age band and occupation, departures,
    returns and crisis repatriations by month, small counts suppressed as in the API (charts in the PDF)."""
    started = time.perf_counter()
    scope.use_everything()
    try:
        report = build(Reach.everywhere(), year)
    except ApiError as exc:
        raise click.BadParameter(" ".join(sum((exc.errors or {}).values(), [])) or exc.detail,
                                 param_hint="--year") from None
    to_stdout = str(output) == "-"
    if to_stdout:
        profile_files.write(click.get_binary_stream("stdout"), report, fmt)
    else:
        with open(output, "wb") as sink:
            profile_files.write(sink, report, fmt)
    audit.record("statistics.profile", actor=service_user(), object_type="statistics",
                 result_count=len(report.tables), details={"profile": year, "format": fmt, "delivery": "cli"})
    db.session.commit()
    if not to_stdout:
        click.echo(f"migration profile {year}: {len(report.tables)} tables written to {output} as {fmt} in "
                   f"{time.perf_counter() - started:.2f} s", err=True)
