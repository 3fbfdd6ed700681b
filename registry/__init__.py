"""Sagip: the crisis repatriation and migrant registry (Flask application)."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, request

from registry import config as config_module

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(overrides: dict | None = None, environ=None) -> Flask:
    """Build the application: config (from ``environ``, by default the process's), extensions, blueprints,
    error handlers, Celery."""
    app = Flask(__name__)
    app.config.update(config_module.load(environ, overrides=overrides))
    from registry.web.encoding import JSONProvider
    app.json = JSONProvider(app)
    logging.getLogger("registry").setLevel(app.config["REGISTRY_LOG_LEVEL"])

    from registry.extensions import db, migrate
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    from registry.auth import scope
    scope.init_app(app)
    # SQL logging would write statement parameters (personal data): never below WARNING.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

    from registry.worker import init_celery
    init_celery(app)
    from registry.replies import keywords
    keywords.table(app.config["REGISTRY_SMS_KEYWORDS"])  # a bad setting fails here, loudly (ConfigError)

    _register_models()
    _register_blueprints(app)

    from registry.web.problems import register_error_handlers
    register_error_handlers(app)
    _register_request_hooks(app)

    from registry.cli import register_commands
    register_commands(app)
    return app


def _register_models() -> None:
    # Imported for their side effect: the tables join db.metadata.
    from registry import idempotency  # noqa: F401
    from registry.assembly_points import models as assembly_point_models  # noqa: F401
    from registry.audit import models as audit_models  # noqa: F401
    from registry.campaigns import models as campaign_models  # noqa: F401
    from registry.auth import models as auth_models  # noqa: F401
    from registry.checkin import models as checkin_models  # noqa: F401
    from registry.codes import models as code_models  # noqa: F401
    from registry.crises import models as crisis_models  # noqa: F401
    from registry.jobs import models as job_models  # noqa: F401
    from registry.maps import models as map_models  # noqa: F401
    from registry.nationals import models as national_models  # noqa: F401
    from registry.replies import models as reply_models  # noqa: F401
    from registry.rosters import models as roster_models  # noqa: F401
    from registry.statistics import models as statistics_models  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from registry import health
    from registry.audit.views import bp as audit_bp
    from registry.codes.views import bp as codes_bp
    from registry.campaigns.views import crisis_messages_bp, dlr_bp, messages_bp
    from registry.crises.views import bp as crises_bp
    from registry.imports.views import bp as imports_bp
    from registry.jobs.views import bp as jobs_bp
    from registry.maps.views import bp as map_bp
    from registry.nationals.views import bp as nationals_bp
    from registry.places.views import bp as places_bp
    from registry.assembly_points.views import bp as assembly_points_bp
    from registry.replies.views import bp as inbox_bp, hooks as sms_hook_bp
    from registry.rosters.views import crisis_rosters_bp, rosters_bp
    from registry.statistics.views import bp as statistics_bp
    from registry.checkin.api import bp as verification_bp
    from registry.checkin.api import links_bp as checkin_links_bp
    from registry.checkin.views import bp as checkin_bp
    from registry import boundary
    from registry.web import access_log
    from registry.metrics.views import bp as metrics_bp
    from registry.web.openapi import init_api

    init_api(app, [nationals_bp, imports_bp, jobs_bp, crises_bp, assembly_points_bp, crisis_rosters_bp, rosters_bp,
                   audit_bp, places_bp, map_bp, statistics_bp, codes_bp, sms_hook_bp, inbox_bp, verification_bp,
                   checkin_links_bp, crisis_messages_bp, messages_bp], root_blueprints=[metrics_bp])
    app.register_blueprint(dlr_bp)
    from registry.console import init_console
    init_console(app)
    app.register_blueprint(checkin_bp)  # the public check-in pages, at /checkin (SPEC §10)
    access_log.install()  # ... whose tokens never reach a log
    boundary.install(app)
    app.register_blueprint(health.bp)


UPLOAD_ENDPOINTS = {"imports.create_import", "assembly_points.import_points", "console.upload_import",
                    "console.import_assembly_points"}
# Crisis areas may be detailed (up to areas.MAX_AREA_VERTICES): their own, larger body limit.
AREA_ENDPOINTS = {"crises.declare_crisis", "crises.update_crisis", "console.crisis_create"}


def _register_request_hooks(app: Flask) -> None:
    from registry.web import observe
    observe.install(app)  # each request's id, metrics and log line: first in, last out

    @app.before_request
    def _limit_body():
        # JSON routes keep a small limit; file uploads get MAX_CONTENT_LENGTH.
        if request.endpoint in AREA_ENDPOINTS:
            request.max_content_length = app.config["REGISTRY_MAX_AREA_BODY_BYTES"]
            request.max_form_memory_size = app.config["REGISTRY_MAX_AREA_BODY_BYTES"]  # an area pasted in a form
        elif request.endpoint not in UPLOAD_ENDPOINTS:
            request.max_content_length = app.config["REGISTRY_MAX_BODY_BYTES"]

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/api/"):
            # Responses may carry personal data: never cached anywhere.
            headers["Cache-Control"] = "no-store"
        return response
