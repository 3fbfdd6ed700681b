"""``registry serve``, ``registry worker`` and ``registry beat``: the API under gunicorn, a Celery worker, the
scheduler of the periodic work."""
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
@click.option("--name", default=None, help="The worker's node name (Celery's -n, e.g. w2@%h): distinct names for "
                                           "several workers on one machine; recorded on the jobs it runs.")
@click.option("--beat/--no-beat", default=True, show_default=True,
              help="Also run the scheduler of the periodic work (outbox relay, recovery, sealing, retention). "
                   "One per deployment: with more workers, give them --no-beat and run `registry beat` once.")
def worker(concurrency: int, name: str | None, beat: bool):
    """Run a Celery worker."""
    args = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency)]
    if name:
        args += ["--hostname", name]
    if beat:
        args += ["--beat", "--schedule", str(_schedule_file())]
    os.execvp(args[0], args)


@click.command("beat")
def beat():
    """Run the scheduler of the periodic work alone (run one, beside workers started with --no-beat)."""
    args = [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO",
            "--schedule", str(_schedule_file())]
    os.execvp(args[0], args)


def _schedule_file() -> Path:
    return Path(current_app.config["REGISTRY_DATA_DIR"]) / "celerybeat-schedule"
