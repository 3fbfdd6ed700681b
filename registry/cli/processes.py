"""``registry serve`` and ``registry worker``: the API under gunicorn, a Celery worker."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app

GUNICORN_CONFIG = Path(__file__).resolve().parent.parent / "gunicorn_conf.py"


@click.command("serve")
@click.option("--port", default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(port: int, host: str):
    """Run the API under gunicorn."""
    os.environ["REGISTRY_BIND"] = f"{host}:{port}"
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "registry.wsgi:app"])


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
