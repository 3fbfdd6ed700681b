"""Row-level security, the database's half of the jurisdiction rule.

The query layer (``visible_nationals``) decides what a caller may see; the
database enforces the same rule a second time. The service connects, then
switches to ``REGISTRY_DB_ROLE`` (``sagip_app``: not the tables' owner, no
BYPASSRLS), and every transaction carries ``sagip.scope``, set with
``set_config(…, is_local => true)`` (SET LOCAL): ``*`` for roles that see
every record, the comma-separated host countries of an embassy officer,
nothing (and so no rows) otherwise. The policies are in migration 0002.
"""
from __future__ import annotations

from sqlalchemy import event, text

from registry.extensions import db

SETTING = "sagip.scope"
EVERYTHING = "*"
_SET = text(f"SELECT set_config('{SETTING}', :scope, true)")

# The same expression, in SQL, for the token lookup (it sets the scope in the same round trip).
SCOPE_SQL = ("CASE users.role WHEN 'embassy' THEN array_to_string(users.jurisdiction, ',') "
             "WHEN 'auditor' THEN '' ELSE '*' END")


def scope_for(role: str, jurisdiction) -> str:
    if role == "embassy":
        return ",".join(jurisdiction)
    return "" if role == "auditor" else EVERYTHING


def remember(scope: str) -> None:
    """Record the scope already set in the current transaction, for the later ones of this session."""
    db.session.info["db_scope"] = scope


def use(scope: str) -> None:
    """Bind this session's transactions, the current one included, to ``scope``."""
    session = db.session()
    session.info["db_scope"] = scope
    if session.in_transaction():
        session.execute(_SET, {"scope": scope})


def use_everything() -> None:
    """Workers and the command line act for the service itself."""
    use(EVERYTHING)


def _after_begin(session, transaction, connection) -> None:
    scope = session.info.get("db_scope")
    if scope is not None:
        connection.execute(_SET, {"scope": scope})


def init_app(app) -> None:
    """Switch every new connection to the application role; carry the scope across transactions."""
    role = app.config["REGISTRY_DB_ROLE"]
    if not event.contains(db.session, "after_begin", _after_begin):
        event.listen(db.session, "after_begin", _after_begin)
    if not role:
        return
    if not role.replace("_", "").isalnum():
        raise ValueError("REGISTRY_DB_ROLE must be a plain identifier")

    def _set_role(dbapi_connection, connection_record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {role}")
        dbapi_connection.commit()

    with app.app_context():
        event.listen(db.engine, "connect", _set_role)
