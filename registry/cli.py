"""The ``registry`` command (a Flask CLI group): works from any directory."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup


def _create_app():
    from registry import create_app
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def main():
    """Sagip registry: crisis repatriation and migrant registry."""


def register_commands(app) -> None:
    """The features' command groups; none of them imports this module."""
    from registry.audit.commands import audit
    from registry.auth.commands import users
    from registry.demo.commands import demo
    from registry.imports.commands import import_file
    from registry.nationals.commands import keys
    from registry.retention.commands import retention
    from registry.rosters.commands import export
    for command in (users, audit, keys, retention, demo, serve, worker, import_file, export):
        app.cli.add_command(command)


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


if __name__ == "__main__":
    main()
