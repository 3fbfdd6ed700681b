"""Configuration: defaults, then the environment. No I/O at import time.

Every variable the service reads is listed in ``ENVIRONMENT`` (and the README).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

# name -> (default, meaning); the README's table is written from this.
ENVIRONMENT = {
    "DATABASE_URL": ("postgresql://postgres@127.0.0.1:5432/sagip",
                     "PostgreSQL + PostGIS; a plain postgresql:// URL is mapped to psycopg 3"),
    "REDIS_URL": ("redis://127.0.0.1:6379/0", "Celery broker and result store"),
    "REGISTRY_ENV": ("development", "development (keys generated into the data folder) or production (keys required)"),
    "REGISTRY_DATA_DIR": ("~/.local/share/sagip", "development keys, shared by the API, the worker and the CLI"),
    "REGISTRY_TOKEN_KEY": ("", "HMAC key (hex, >= 32 bytes) for API token hashes; required in production"),
    "REGISTRY_MAX_BODY_BYTES": ("262144", "largest JSON request body (413 beyond)"),
    "REGISTRY_MAX_UPLOAD_BYTES": ("104857600", "largest import file (413 beyond)"),
    "REGISTRY_TOKEN_TTL_DAYS": ("365", "lifetime of a new API token"),
    "REGISTRY_OUTBOX_RELAY_SECONDS": ("5", "how often the worker re-sends work whose dispatch failed"),
    "REGISTRY_LOG_LEVEL": ("INFO", "log level of the service's own loggers"),
}


class ConfigError(RuntimeError):
    """The configuration cannot work (e.g. production without its keys)."""


def database_url(raw: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` to the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    return raw


def _env(name: str, environ) -> str:
    return environ.get(name, ENVIRONMENT[name][0])


def _development_key(data_dir: Path, name: str) -> str:
    """Read or create (once, mode 0600) a random key shared by all processes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        key = secrets.token_hex(32)
        handle.write(key)
    return key


def load(environ=None, overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment and overrides."""
    environ = os.environ if environ is None else environ
    env = _env("REGISTRY_ENV", environ)
    if env not in ("development", "production"):
        raise ConfigError(f"REGISTRY_ENV must be development or production, not {env!r}")
    data_dir = Path(_env("REGISTRY_DATA_DIR", environ)).expanduser()
    token_key = _env("REGISTRY_TOKEN_KEY", environ)
    if not token_key:
        if env == "production":
            raise ConfigError("REGISTRY_TOKEN_KEY is required when REGISTRY_ENV=production")
        token_key = _development_key(data_dir, "token")
    if len(bytes.fromhex(token_key)) < 32:
        raise ConfigError("REGISTRY_TOKEN_KEY must be at least 32 bytes, hex-encoded")

    config = {
        "REGISTRY_ENV": env,
        "REGISTRY_DATA_DIR": str(data_dir),
        "SQLALCHEMY_DATABASE_URI": database_url(_env("DATABASE_URL", environ)),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": _env("REDIS_URL", environ),
        "REGISTRY_TOKEN_KEY": bytes.fromhex(token_key),
        "REGISTRY_MAX_BODY_BYTES": int(_env("REGISTRY_MAX_BODY_BYTES", environ)),
        "MAX_CONTENT_LENGTH": int(_env("REGISTRY_MAX_UPLOAD_BYTES", environ)),
        "REGISTRY_TOKEN_TTL_DAYS": int(_env("REGISTRY_TOKEN_TTL_DAYS", environ)),
        "REGISTRY_OUTBOX_RELAY_SECONDS": float(_env("REGISTRY_OUTBOX_RELAY_SECONDS", environ)),
        "REGISTRY_LOG_LEVEL": _env("REGISTRY_LOG_LEVEL", environ),
        "JSON_SORT_KEYS": False,
    }
    config.update(overrides or {})
    return config
