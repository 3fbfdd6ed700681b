"""WSGI entry point for gunicorn: ``gunicorn registry.wsgi:app``."""
from registry import create_app, logs

app = create_app()
logs.configure(app.config["REGISTRY_LOG_FORMAT"], app.config["REGISTRY_LOG_LEVEL"])
