"""``registry import FILE``: a bulk import on the command line, through the same path as ``POST /imports``."""
from __future__ import annotations

import threading
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from registry.auth import scope
from registry.auth.services import service_user
from registry.extensions import db
from registry.imports.services import create_import, run_import
from registry.jobs.models import Job
from registry.jobs.runner import run_job


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_file(file: Path):
    """Import a CSV or XLSX of registrations (the same path as POST /imports), in this process."""
    scope.use_everything()
    job = import_in_process(file.name, file.read_bytes(), service_user(), label=f"importing {file.name}")
    result = job.result
    click.echo(f"created {result['created']}, duplicates {result['duplicates']}, rejected {result['rejected']}")
    for error in result["errors"][:50]:
        click.echo(f"  row {error['row']}: {error['field']}: {error['message']}", err=True)


def import_in_process(filename: str, data: bytes, user, *, label: str) -> Job:
    """Run an import job in this process (not on a worker) with a progress bar; the finished job.

    :raises click.ClickException: the import failed.
    """
    job_id = create_import(filename, data, user).id
    db.session.info.pop("sagip_outbox_pending", None)  # run here, not on a worker
    db.session.commit()
    app = current_app._get_current_object()

    def work():
        with app.app_context():
            run_job(str(job_id), run_import)

    thread = threading.Thread(target=work, name="import", daemon=True)
    thread.start()
    with click.progressbar(length=100, label=label) as bar:
        shown = 0
        while thread.is_alive():
            thread.join(0.3)
            with db.engine.connect() as conn:
                progress = conn.execute(select(Job.progress).where(Job.id == job_id)).scalar() or 0.0
            bar.update(max(int(progress * 100) - shown, 0))
            shown = max(shown, int(progress * 100))
        bar.update(100 - shown)
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    if job.status != "succeeded":
        message = job.error["message"] if job.error else f"status {job.status}"
        raise click.ClickException(f"import failed: {message}")
    return job
