"""The ``registry`` command (a Flask CLI group): works from any directory.

This module only assembles: each command lives in a module beside it (users, audit, keys, retention, demo,
imports, export, processes, gateways, profile, backup), calls the services, and never imports this module.
"""
from __future__ import annotations

import click
from flask.cli import FlaskGroup


def _create_app(environ=None):
    """The app (from ``environ``, by default the process's); commands without the app reach this factory
    through the click context's ScriptInfo (``restore`` builds the app with the keys it restored)."""
    from registry import create_app, logs
    app = create_app(environ=environ)
    logs.configure(app.config["REGISTRY_LOG_FORMAT"], app.config["REGISTRY_LOG_LEVEL"])  # on stderr
    return app


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def main():
    """Sagip registry: crisis repatriation and migrant registry."""


def _add_root_commands() -> None:
    """Commands that run without the app: ``restore`` brings back the keys the app needs to start."""
    from registry.cli.backup import restore
    main.add_command(restore)


_add_root_commands()


def register_commands(app) -> None:
    """Every command, from the modules beside this one; none of them imports this module."""
    from registry.cli.audit import audit
    from registry.cli.backup import backup
    from registry.cli.demo import demo
    from registry.cli.export import export
    from registry.cli.gateways import gateways
    from registry.cli.imports import import_file
    from registry.cli.keys import keys
    from registry.cli.processes import beat, serve, worker
    from registry.cli.profile import profile
    from registry.cli.retention import retention
    from registry.cli.users import users
    for command in (users, audit, keys, retention, demo, serve, worker, beat, import_file, export, gateways, profile,
                    backup):
        app.cli.add_command(command)
