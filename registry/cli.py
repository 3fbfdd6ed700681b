"""The ``registry`` command (a Flask CLI group): works from any directory."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from registry.auth import scope
from registry.extensions import db


def _create_app():
    from registry import create_app
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def main():
    """Sagip registry: crisis repatriation and migrant registry."""


def register_commands(app) -> None:
    from registry.audit.commands import audit
    from registry.auth.commands import users
    from registry.nationals.commands import keys, retention
    from registry.rosters.commands import export
    app.cli.add_command(users)
    app.cli.add_command(audit)
    app.cli.add_command(keys)
    app.cli.add_command(retention)
    app.cli.add_command(demo)
    app.cli.add_command(serve)
    app.cli.add_command(worker)
    app.cli.add_command(import_file)
    app.cli.add_command(export)


@click.command("serve")
@click.option("--port", default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(port: int, host: str):
    """Run the API under gunicorn."""
    os.environ["REGISTRY_BIND"] = f"{host}:{port}"
    config = Path(__file__).with_name("gunicorn_conf.py")
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(config), "registry.wsgi:app"])


@click.command("worker")
@click.option("--concurrency", default=2, show_default=True)
@click.option("--beat/--no-beat", default=True, show_default=True,
              help="Also run the scheduler that re-sends work whose dispatch failed (one per deployment).")
def worker(concurrency: int, beat: bool):
    """Run a Celery worker."""
    args = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency)]
    if beat:
        schedule = Path(current_app.config["REGISTRY_DATA_DIR"]) / "celerybeat-schedule"
        args += ["--beat", "--schedule", str(schedule)]
    os.execvp(args[0], args)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_file(file: Path):
    """Import a CSV or XLSX of registrations (the same path as POST /imports), in this process."""
    scope.use_everything()
    job = import_in_process(file.name, file.read_bytes(), cli_user(), label=f"importing {file.name}")
    result = job.result
    click.echo(f"created {result['created']}, duplicates {result['duplicates']}, rejected {result['rejected']}")
    for error in result["errors"][:50]:
        click.echo(f"  row {error['row']}: {error['field']}: {error['message']}", err=True)


def import_in_process(filename: str, data: bytes, user, *, label: str):
    """Run an import job in this process (not on a worker) with a progress bar; the finished job.

    :raises click.ClickException: the import failed.
    """
    import threading

    from flask import current_app
    from sqlalchemy import select

    from registry.imports.services import create_import, run_import
    from registry.jobs.models import Job
    from tasks.base import run_job

    job_id = create_import(filename, data, user).id
    db.session.info.pop("sagip_outbox_pending", None)  # run here, not on a worker
    db.session.commit()
    app = current_app._get_current_object()

    def work():
        with app.app_context():
            try:
                run_job(str(job_id), run_import)
            except Exception:  # recorded on the job by run_job
                pass

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


def cli_user():
    """The built-in 'cli' admin user that owns work started from the command line."""
    from sqlalchemy import select

    from registry.auth.models import User
    user = db.session.scalar(select(User).where(User.name == "cli", User.role == "admin"))
    if user is None:
        user = User(name="cli", role="admin", jurisdiction=[])
        db.session.add(user)
        db.session.flush()
    return user


@click.command("demo")
@click.option("--nationals", default=5000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@with_appcontext
def demo(nationals: int, seed: int):
    """Load a realistic demo: nationals in several host countries and cities, and demo users."""
    scope.use_everything()
    from registry.demo import load_demo
    load_demo(nationals, seed, cli_user())


if __name__ == "__main__":
    main()
