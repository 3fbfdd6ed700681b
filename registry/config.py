"""Configuration: defaults, then the environment. No I/O at import time.

Every variable the service reads is listed in ``ENVIRONMENT`` (and the README).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from registry.crypto import parse_index_keys, parse_keys
from registry.logs import resolve_format

# name -> (default, meaning); the README's table is written from this.
ENVIRONMENT = {
    "DATABASE_URL": ("postgresql://postgres@127.0.0.1:5432/sagip",
                     "PostgreSQL + PostGIS; a plain postgresql:// URL is mapped to psycopg 3"),
    "REDIS_URL": ("redis://127.0.0.1:6379/0", "Celery broker and result store"),
    "REGISTRY_ENV": ("development", "development (keys generated into the data folder) or production (keys required)"),
    "REGISTRY_DATA_DIR": ("~/.local/share/sagip", "development keys, shared by the API, the worker and the CLI"),
    "REGISTRY_TOKEN_KEY": ("", "HMAC key (hex, >= 32 bytes) for API token hashes; required in production"),
    "REGISTRY_ENCRYPTION_KEYS": ("", "AES-256 keys for passport and national ID numbers, newest first: "
                                     "`2:<64 hex>,1:<64 hex>`; required in production"),
    "REGISTRY_BLIND_INDEX_KEY": ("", "HMAC key (hex, >= 32 bytes) of the passport / national ID lookup index, or "
                                     "versions of it, the current first: `2:<hex>,1:<hex>` (`registry keys "
                                     "rotate-index`); required in production"),
    "REGISTRY_AUDIT_KEY": ("", "HMAC key (hex, >= 32 bytes) of the audit trail's hash chain; required in production"),
    "REGISTRY_AUDIT_SIGNING_KEY": ("", "Ed25519 private key (32 bytes, hex) that signs `registry audit checkpoint` "
                                       "documents kept by the auditor outside the database; required in production"),
    "REGISTRY_BACKUP_KEY": ("", "AES-256 key (64 hex digits) `registry backup` encrypts with; with it alone `registry "
                                "restore` brings a backup back on another machine: keep a copy away from the "
                                "machine. Read by those two commands only; required by them in production, "
                                "generated into the data folder in development"),
    "REGISTRY_DB_ROLE": ("sagip_app", "database role the API and workers switch to (SET ROLE): not the tables' "
                                      "owner, bound by row-level security; empty to stay the connecting role"),
    "REGISTRY_EXPOSURE_REFRESH_SECONDS": ("300", "how often active crises are re-run when nationals registered "
                                                  "or moved since their last exposure run"),
    "REGISTRY_WORKER_DB_ROLE": ("sagip_system", "database role of the Celery workers: the application role's "
                                                "privileges plus BYPASSRLS (they act for the whole service; "
                                                "spatial indexes are unusable under RLS); empty to stay the "
                                                "connecting role"),
    "REGISTRY_AUDIT_SEAL_SECONDS": ("10", "how often the worker seals new audit events into the hash chain"),
    "REGISTRY_MAP_FOLD_SECONDS": ("5", "how often the worker folds the map grid's recent changes into its cells "
                                       "(views count both either way: this keeps what they read small)"),
    "REGISTRY_RETENTION_RETURNED_DAYS": ("365", "days after a national's return before the record is purged"),
    "REGISTRY_AUTH_FAILURES_PER_MINUTE": ("30", "failed authentications per client address and minute before 429"),
    "REGISTRY_BULK_READS_PER_MINUTE": ("600", "lists, searches and exports per user and minute before 429"),
    "REGISTRY_PASSPORT_LOOKUPS_PER_MINUTE": ("30", "passport lookups per user and minute before 429: searches by "
                                                   "passport, and registrations or changes that meet a registered "
                                                   "passport (409)"),
    "REGISTRY_MAX_BODY_BYTES": ("262144", "largest JSON request body (413 beyond)"),
    "REGISTRY_MAX_UPLOAD_BYTES": ("104857600", "largest import file (413 beyond)"),
    "REGISTRY_IMPORT_MAX_ROWS": ("1000000", "most rows below the header of one import file (CSV or XLSX); a "
                                            "larger file is refused whole: split it"),
    "REGISTRY_IMPORT_MAX_UNCOMPRESSED_BYTES": ("536870912", "largest import file once unzipped: an XLSX's "
                                                            "members by the sizes they declare, checked before "
                                                            "anything is inflated; a CSV's bytes"),
    "REGISTRY_IMPORT_MAX_CELL_CHARS": ("10000", "longest cell of an import file; a longer one rejects its row"),
    "REGISTRY_IMPORT_PROCESSES": ("0", "validator processes an import of more than one batch (10,000 rows) starts "
                                       "for its job (python -m registry.imports.pool, each within "
                                       "REGISTRY_WORKER_MAX_MEMORY_MB); 0: one per CPU; 1: the job's own process"),
    "REGISTRY_MAX_AREA_BODY_BYTES": ("67108864", "largest crisis declaration or change (413 beyond); areas are "
                                                 "capped at 200,000 vertices before that (422)"),
    "REGISTRY_VISIBILITY_TIMEOUT_S": ("3600", "seconds before Redis re-delivers a task whose worker died: "
                                              "longer than the longest run"),
    "REGISTRY_TOKEN_TTL_DAYS": ("365", "lifetime of a new API token"),
    "REGISTRY_OUTBOX_RELAY_SECONDS": ("5", "how often the worker re-sends work whose dispatch failed"),
    "REGISTRY_JOB_MAX_ATTEMPTS": ("3", "starts of a job whose worker died each time (killed, out of memory) before "
                                       "it is failed instead of run again"),
    "REGISTRY_WORKER_MAX_MEMORY_MB": ("4096", "memory ceiling of each worker child process (its data size): a job "
                                              "that needs more fails with a reason instead of taking the machine "
                                              "down"),
    "REGISTRY_UPLOAD_RETENTION_HOURS": ("24", "uploaded files older than this are deleted, whatever became of their "
                                              "job"),
    "REGISTRY_LOG_LEVEL": ("INFO", "log level of the service's own loggers"),
    "REGISTRY_LOG_FORMAT": ("", "json (one JSON object per line) or text; empty: json in production, text in "
                                "development"),
    "REGISTRY_METRICS_PUBLIC": ("0", "1: /metrics answers anyone (keep it on a private network); 0: an admin's "
                                     "token or console session only"),
    "REGISTRY_EXPORT_INLINE_ROWS": ("5000", "roster exports up to this many rows are answered at once; larger "
                                            "ones are built by a worker (202 with a job)"),
    "REGISTRY_EXPORT_TTL_SECONDS": ("3600", "how long a worker-built export file can be downloaded before it "
                                            "is deleted"),
    "REGISTRY_PDF_MAX_ROWS": ("50000", "largest PDF export (422 beyond: export one assembly point at a time); a "
                                       "PDF is built in memory, about 2 KB a row"),
    "REGISTRY_RETENTION_CLOSED_CRISIS_DAYS": ("90", "days after a crisis is closed before its rosters and welfare "
                                                    "records are purged"),
    "REGISTRY_SESSION_IDLE_MINUTES": ("30", "a console session ends after this long without a request"),
    "REGISTRY_SESSION_MAX_HOURS": ("12", "a console session ends this long after sign-in, however active"),
    "REGISTRY_SIGN_IN_FAILURES": ("10", "failed console sign-ins per username, and per address, in the window "
                                        "before sign-in waits (429)"),
    "REGISTRY_SIGN_IN_WINDOW_MINUTES": ("15", "the window of REGISTRY_SIGN_IN_FAILURES"),
    "REGISTRY_INVITATION_HOURS": ("72", "how long an invitation link to set a console password works"),
    "REGISTRY_COOKIE_SECURE": ("", "send the console's cookie over HTTPS only: 1 or 0 (default: 1 in production, 0 "
                                   "in development)"),
    "REGISTRY_PUBLIC_URL": ("http://127.0.0.1:8000", "the service's public address, for links it sends (invitations)"),
    "REGISTRY_NATIONALITY": ("PH", "the service's own nationality: the registration form's default"),
    "REGISTRY_TILE_URL": ("", "an online tile layer for the console's maps ({z}/{x}/{y} template); empty: only the "
                              "country boundaries the service ships (offline)"),
    "REGISTRY_CALL_CLAIM_MINUTES": ("10", "how long a hotline operator holds the person they are calling; an "
                                          "abandoned claim then goes back to the call list"),
    "REGISTRY_CALL_RETRY_MINUTES": ("30", "a person the hotline tried without settling their welfare comes back "
                                          "to the call list after this long (sooner only when no one else is left)"),
    "REGISTRY_SMS_URL": ("", "Kannel's sendsms interface with its user and password, e.g. `http://127.0.0.1:14013/"
                             "cgi-bin/sendsms?username=sagip&password=…`; empty: the SMS channel is off"),
    "REGISTRY_SMS_CALLBACK_URL": ("", "the service's address as Kannel reaches it, for delivery reports "
                                      "(`dlr-url`); empty: REGISTRY_PUBLIC_URL"),
    "REGISTRY_SMS_MAX_PARTS": ("4", "most SMS parts a campaign template may take (a longer one is refused, 422), "
                                    "its given name counted at 30 characters"),
    "REGISTRY_CAMPAIGN_SENDERS": ("16", "sender threads of a campaign job, each with its own database and gateway "
                                        "connection: Kannel with delivery reports answers a request in about "
                                        "6 ms, so its throughput grows with requests at once (bench/outreach.py: "
                                        "4 senders 105 msg/s, 16 senders 526 msg/s)"),
    "REGISTRY_SMS_SENDER": ("SAGIP", "the sender (from) of the messages sent through Kannel"),
    "REGISTRY_SMS_RATE": ("50", "most SMS messages sent per second, all campaigns and workers together"),
    "REGISTRY_SMS_HOOK_SECRET": ("", "shared secret Kannel's sms-service sends to /api/v1/hooks/sms (header "
                                     "X-Sagip-Hook-Secret or field `secret`); required in production, generated "
                                     "into the data folder in development"),
    "REGISTRY_SMS_KEYWORDS": ("", "JSON object mapping reply keywords to welfare statuses, replacing the defaults "
                                  "(1/SAFE/LIGTAS: safe, 2/HELP/TULONG: needs_assistance, 3/EVACUATE: "
                                  "needs_evacuation; STOP opts out)"),
    "REGISTRY_SMTP_URL": ("", "SMTP server for email campaigns: `smtp://host:port`, `smtp+starttls://user:pass@host:"
                              "port` or `smtps://…`; empty: the email channel is off"),
    "REGISTRY_EMAIL_FROM": ("Sagip <no-reply@sagip.example.org>", "the From address of campaign emails"),
    "REGISTRY_HOTLINE": ("", "the hotline number campaigns ({hotline}) and locked check-in links show"),
    "REGISTRY_CHECKIN_TTL_DAYS": ("30", "a check-in link works until its crisis closes or this many days after it "
                                        "was sent"),
    "REGISTRY_CHECKIN_KEY": ("", "HMAC key (hex, >= 32 bytes) check-in link tokens are derived with; required in "
                                 "production"),
    "REGISTRY_CHECKIN_REQUESTS_PER_MINUTE": ("60", "check-in and self-registration page requests per address and "
                                                   "minute before 429 (families share phones and networks)"),
    "REGISTRY_SELF_REGISTRATIONS_PER_HOUR": ("20", "self-registrations per address and hour, before 429"),
    "REGISTRY_SELF_REGISTRATIONS_PER_CRISIS_HOUR": ("2000", "self-registrations per crisis and hour, before 429"),
    "REGISTRY_STATS_MIN_CELL": ("10", "statistics: cells and totals counting fewer people than this (but some) are "
                                      "suppressed, with the cells that would give them away (SPEC §11)"),
    "REGISTRY_PFIF_DOMAIN": ("sagip.example.org", "the record domain of PFIF exports (person_record_id "
                                                  "domain/local-id)"),
}


DATABASE_CONNECT_TIMEOUT_S = 5


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


def _development_key(data_dir: Path, name: str, prefix: str = "") -> str:
    """Read or create (once, mode 0600) a random key shared by all processes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        key = prefix + secrets.token_hex(32)
        handle.write(key)
    return key


def development_key_path(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir).expanduser() / f"{name}.key"


# The service's secrets: required in production, generated into the data folder in development, and carried
# by a backup (registry/backups), which without them could not be read (encrypted numbers, the audit chain).
SECRETS = ("REGISTRY_TOKEN_KEY", "REGISTRY_ENCRYPTION_KEYS", "REGISTRY_BLIND_INDEX_KEY", "REGISTRY_AUDIT_KEY",
           "REGISTRY_AUDIT_SIGNING_KEY", "REGISTRY_CHECKIN_KEY", "REGISTRY_SMS_HOOK_SECRET")


def development_key_name(name: str) -> str:
    """The data folder's file name (without ``.key``) of the secret ``name``: REGISTRY_AUDIT_KEY → audit."""
    return name.removeprefix("REGISTRY_").removesuffix("_KEY").removesuffix("_KEYS").lower()


def _secret(name: str, environ, env: str, data_dir: Path, prefix: str = "") -> str:
    value = _env(name, environ)
    if not value:
        if env == "production":
            raise ConfigError(f"{name} is required when REGISTRY_ENV=production")
        value = _development_key(data_dir, development_key_name(name), prefix)
    return value


def secret_settings(app_config) -> dict[str, str]:
    """Each of ``SECRETS`` as the text of its setting (what ``load`` reads back), from a loaded config."""
    settings = {}
    for name in SECRETS:
        value = app_config[name]
        settings[name] = value.hex() if isinstance(value, bytes) else value
    return settings


def backup_key(environ=None, *, create: bool) -> bytes:
    """REGISTRY_BACKUP_KEY: from the environment, else (development) the data folder's ``backup.key``,
    generated there once when ``create``. Never part of the loaded config: the API and the workers do not
    hold it.

    :raises ConfigError: missing (production, or a restore in development without the file), malformed,
        or equal to one of the service's keys.
    """
    environ = os.environ if environ is None else environ
    env = _env("REGISTRY_ENV", environ)
    value = _env("REGISTRY_BACKUP_KEY", environ).strip()
    if not value:
        path = development_key_path(_env("REGISTRY_DATA_DIR", environ), "backup")
        if env == "production":
            raise ConfigError("REGISTRY_BACKUP_KEY is required when REGISTRY_ENV=production")
        if not create and not path.exists():
            raise ConfigError(f"REGISTRY_BACKUP_KEY is not set and {path} does not exist: give the key the backup "
                              "was made with")
        value = _development_key(path.parent, "backup").strip()
    key = _hex_key("REGISTRY_BACKUP_KEY", value)
    if len(key) != 32:
        raise ConfigError("REGISTRY_BACKUP_KEY must be 32 bytes, hex-encoded (64 hex digits)")
    return key


def _hex_key(name: str, value: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise ConfigError(f"{name} must be hex-encoded") from None
    if len(key) < 32:
        raise ConfigError(f"{name} must be at least 32 bytes, hex-encoded")
    return key


def _signing_key(name: str, value: str) -> bytes:
    """An Ed25519 private key is exactly 32 bytes (any 32 bytes will do)."""
    key = _hex_key(name, value)
    if len(key) != 32:
        raise ConfigError(f"{name} must be an Ed25519 private key: 32 bytes, hex-encoded (64 hex digits)")
    return key


def load(environ=None, overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment and overrides."""
    environ = os.environ if environ is None else environ
    env = _env("REGISTRY_ENV", environ)
    if env not in ("development", "production"):
        raise ConfigError(f"REGISTRY_ENV must be development or production, not {env!r}")
    data_dir = Path(_env("REGISTRY_DATA_DIR", environ)).expanduser()
    token_key = _hex_key("REGISTRY_TOKEN_KEY", _secret("REGISTRY_TOKEN_KEY", environ, env, data_dir))
    index_setting = _secret("REGISTRY_BLIND_INDEX_KEY", environ, env, data_dir)
    try:
        _, index_keys = parse_index_keys(index_setting)
    except ValueError as exc:
        raise ConfigError(f"REGISTRY_BLIND_INDEX_KEY: {exc}") from None
    audit_key = _hex_key("REGISTRY_AUDIT_KEY", _secret("REGISTRY_AUDIT_KEY", environ, env, data_dir))
    signing_key = _signing_key("REGISTRY_AUDIT_SIGNING_KEY",
                               _secret("REGISTRY_AUDIT_SIGNING_KEY", environ, env, data_dir))
    encryption_keys = _secret("REGISTRY_ENCRYPTION_KEYS", environ, env, data_dir, prefix="1:")
    try:
        parse_keys(encryption_keys)
    except ValueError as exc:
        raise ConfigError(f"REGISTRY_ENCRYPTION_KEYS: {exc}") from None
    try:
        log_format = resolve_format(_env("REGISTRY_LOG_FORMAT", environ), env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    metrics_public = _env("REGISTRY_METRICS_PUBLIC", environ).strip() or "0"
    if metrics_public not in ("0", "1"):
        raise ConfigError(f"REGISTRY_METRICS_PUBLIC must be 1 or 0, not {metrics_public!r}")
    checkin_key = _hex_key("REGISTRY_CHECKIN_KEY", _secret("REGISTRY_CHECKIN_KEY", environ, env, data_dir))
    singles = (token_key, audit_key, signing_key, checkin_key)
    if len(set(singles)) < len(singles) or set(singles) & set(index_keys.values()):
        raise ConfigError("REGISTRY_TOKEN_KEY, REGISTRY_BLIND_INDEX_KEY (every version), REGISTRY_AUDIT_KEY, "
                          "REGISTRY_AUDIT_SIGNING_KEY and REGISTRY_CHECKIN_KEY must differ")

    config = {
        "REGISTRY_ENV": env,
        "REGISTRY_DATA_DIR": str(data_dir),
        "SQLALCHEMY_DATABASE_URI": database_url(_env("DATABASE_URL", environ)),
        # hide_parameters: a database error's message never carries a statement's values (personal data).
        # pool_pre_ping: a pooled connection that died with its server (restarted) is replaced, not handed to a
        # request; connect_timeout: an unreachable server answers 503 in seconds, not a TCP timeout's minutes.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True,
                                      "connect_args": {"connect_timeout": DATABASE_CONNECT_TIMEOUT_S}},
        "REDIS_URL": _env("REDIS_URL", environ),
        "REGISTRY_TOKEN_KEY": token_key,
        # One bare key stays its bytes (version 1, as before versions existed); versions stay the setting's
        # text. registry.crypto.parse_index_keys reads both.
        "REGISTRY_BLIND_INDEX_KEY": index_keys[1] if ":" not in index_setting else index_setting.strip(),
        "REGISTRY_AUDIT_KEY": audit_key,
        "REGISTRY_AUDIT_SIGNING_KEY": signing_key,
        "REGISTRY_ENCRYPTION_KEYS": encryption_keys,
        "REGISTRY_DB_ROLE": _env("REGISTRY_DB_ROLE", environ),
        "REGISTRY_WORKER_DB_ROLE": _env("REGISTRY_WORKER_DB_ROLE", environ),
        # "api" (row-level security applies) or "worker" (tasks/__init__.py): which database role to take.
        "REGISTRY_PROCESS": "api",
        "REGISTRY_EXPOSURE_REFRESH_SECONDS": float(_env("REGISTRY_EXPOSURE_REFRESH_SECONDS", environ)),
        "REGISTRY_AUDIT_SEAL_SECONDS": float(_env("REGISTRY_AUDIT_SEAL_SECONDS", environ)),
        "REGISTRY_MAP_FOLD_SECONDS": float(_env("REGISTRY_MAP_FOLD_SECONDS", environ)),
        "REGISTRY_RETENTION_RETURNED_DAYS": int(_env("REGISTRY_RETENTION_RETURNED_DAYS", environ)),
        "REGISTRY_AUTH_FAILURES_PER_MINUTE": int(_env("REGISTRY_AUTH_FAILURES_PER_MINUTE", environ)),
        "REGISTRY_BULK_READS_PER_MINUTE": int(_env("REGISTRY_BULK_READS_PER_MINUTE", environ)),
        "REGISTRY_PASSPORT_LOOKUPS_PER_MINUTE": int(_env("REGISTRY_PASSPORT_LOOKUPS_PER_MINUTE", environ)),
        "REGISTRY_MAX_BODY_BYTES": int(_env("REGISTRY_MAX_BODY_BYTES", environ)),
        "MAX_CONTENT_LENGTH": int(_env("REGISTRY_MAX_UPLOAD_BYTES", environ)),
        "REGISTRY_IMPORT_MAX_ROWS": int(_env("REGISTRY_IMPORT_MAX_ROWS", environ)),
        "REGISTRY_IMPORT_MAX_UNCOMPRESSED_BYTES": int(_env("REGISTRY_IMPORT_MAX_UNCOMPRESSED_BYTES", environ)),
        "REGISTRY_IMPORT_MAX_CELL_CHARS": int(_env("REGISTRY_IMPORT_MAX_CELL_CHARS", environ)),
        "REGISTRY_IMPORT_PROCESSES": max(0, int(_env("REGISTRY_IMPORT_PROCESSES", environ))),
        "REGISTRY_MAX_AREA_BODY_BYTES": int(_env("REGISTRY_MAX_AREA_BODY_BYTES", environ)),
        "REGISTRY_VISIBILITY_TIMEOUT_S": int(_env("REGISTRY_VISIBILITY_TIMEOUT_S", environ)),
        "REGISTRY_TOKEN_TTL_DAYS": int(_env("REGISTRY_TOKEN_TTL_DAYS", environ)),
        "REGISTRY_OUTBOX_RELAY_SECONDS": float(_env("REGISTRY_OUTBOX_RELAY_SECONDS", environ)),
        "REGISTRY_JOB_MAX_ATTEMPTS": int(_env("REGISTRY_JOB_MAX_ATTEMPTS", environ)),
        "REGISTRY_WORKER_MAX_MEMORY_MB": int(_env("REGISTRY_WORKER_MAX_MEMORY_MB", environ)),
        "REGISTRY_UPLOAD_RETENTION_HOURS": float(_env("REGISTRY_UPLOAD_RETENTION_HOURS", environ)),
        "REGISTRY_LOG_LEVEL": _env("REGISTRY_LOG_LEVEL", environ),
        "REGISTRY_LOG_FORMAT": log_format,
        "REGISTRY_METRICS_PUBLIC": metrics_public == "1",
        "REGISTRY_EXPORT_INLINE_ROWS": int(_env("REGISTRY_EXPORT_INLINE_ROWS", environ)),
        "REGISTRY_EXPORT_TTL_SECONDS": int(_env("REGISTRY_EXPORT_TTL_SECONDS", environ)),
        "REGISTRY_PDF_MAX_ROWS": int(_env("REGISTRY_PDF_MAX_ROWS", environ)),
        "REGISTRY_RETENTION_CLOSED_CRISIS_DAYS": int(_env("REGISTRY_RETENTION_CLOSED_CRISIS_DAYS", environ)),
        "REGISTRY_PFIF_DOMAIN": _env("REGISTRY_PFIF_DOMAIN", environ),
        "REGISTRY_STATS_MIN_CELL": int(_env("REGISTRY_STATS_MIN_CELL", environ)),
        "REGISTRY_SMS_URL": _env("REGISTRY_SMS_URL", environ),
        "REGISTRY_SMS_SENDER": _env("REGISTRY_SMS_SENDER", environ),
        "REGISTRY_SMS_CALLBACK_URL": (_env("REGISTRY_SMS_CALLBACK_URL", environ)
                                      or _env("REGISTRY_PUBLIC_URL", environ)).rstrip("/"),
        "REGISTRY_SMS_MAX_PARTS": int(_env("REGISTRY_SMS_MAX_PARTS", environ)),
        "REGISTRY_CAMPAIGN_SENDERS": max(1, int(_env("REGISTRY_CAMPAIGN_SENDERS", environ))),
        "REGISTRY_SMS_RATE": float(_env("REGISTRY_SMS_RATE", environ)),
        "REGISTRY_SMS_HOOK_SECRET": _secret("REGISTRY_SMS_HOOK_SECRET", environ, env, data_dir),
        "REGISTRY_SMS_KEYWORDS": _env("REGISTRY_SMS_KEYWORDS", environ),
        "REGISTRY_SMTP_URL": _env("REGISTRY_SMTP_URL", environ),
        "REGISTRY_EMAIL_FROM": _env("REGISTRY_EMAIL_FROM", environ),
        "REGISTRY_HOTLINE": _env("REGISTRY_HOTLINE", environ),
        "REGISTRY_CHECKIN_TTL_DAYS": float(_env("REGISTRY_CHECKIN_TTL_DAYS", environ)),
        "REGISTRY_CHECKIN_KEY": checkin_key,
        "REGISTRY_CHECKIN_REQUESTS_PER_MINUTE": int(_env("REGISTRY_CHECKIN_REQUESTS_PER_MINUTE", environ)),
        "REGISTRY_SELF_REGISTRATIONS_PER_HOUR": int(_env("REGISTRY_SELF_REGISTRATIONS_PER_HOUR", environ)),
        "REGISTRY_SELF_REGISTRATIONS_PER_CRISIS_HOUR": int(
            _env("REGISTRY_SELF_REGISTRATIONS_PER_CRISIS_HOUR", environ)),
        "REGISTRY_CALL_CLAIM_MINUTES": float(_env("REGISTRY_CALL_CLAIM_MINUTES", environ)),
        "REGISTRY_CALL_RETRY_MINUTES": float(_env("REGISTRY_CALL_RETRY_MINUTES", environ)),
        "REGISTRY_SESSION_IDLE_MINUTES": float(_env("REGISTRY_SESSION_IDLE_MINUTES", environ)),
        "REGISTRY_SESSION_MAX_HOURS": float(_env("REGISTRY_SESSION_MAX_HOURS", environ)),
        "REGISTRY_SIGN_IN_FAILURES": int(_env("REGISTRY_SIGN_IN_FAILURES", environ)),
        "REGISTRY_SIGN_IN_WINDOW_MINUTES": int(_env("REGISTRY_SIGN_IN_WINDOW_MINUTES", environ)),
        "REGISTRY_INVITATION_HOURS": float(_env("REGISTRY_INVITATION_HOURS", environ)),
        "REGISTRY_COOKIE_SECURE": (_env("REGISTRY_COOKIE_SECURE", environ) or
                                   ("1" if env == "production" else "0")) == "1",
        "REGISTRY_PUBLIC_URL": _env("REGISTRY_PUBLIC_URL", environ).rstrip("/"),
        "REGISTRY_NATIONALITY": _env("REGISTRY_NATIONALITY", environ),
        "REGISTRY_TILE_URL": _env("REGISTRY_TILE_URL", environ),
    }
    config.update(overrides or {})
    return config
