"""Row-level security, the database's half of the jurisdiction rule.

The query layer (``visible_nationals``) decides what a caller may see; the
database enforces the same rule a second time. The service connects, then
switches to ``REGISTRY_DB_ROLE`` (``sagip_app``: not the tables' owner, no
BYPASSRLS), and every transaction carries ``sagip.scope``, set with
``set_config(…, is_local => true)`` (SET LOCAL): ``*`` for roles that see
every record, the comma-separated host countries of an embassy officer,
nothing (and so no rows) otherwise. The policies are in migration 0002.

Transactions whose scope is everything (desk, coordinator, admin; workers
and the command line) run as ``REGISTRY_WORKER_DB_ROLE`` (``sagip_system``:
the same privileges plus BYPASSRLS), set per transaction like the scope.
For them the policies would filter nothing, but would cost every spatial
and trigram index: PostGIS and pg_trgm operators are not LEAKPROOF, so under
row-level security the planner may not use them before the policy (measured:
a name search became a sequential scan). Scoped transactions (embassy,
auditor) keep the application role, bound by the policies.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import event, text

from registry.auth.reach import EVERYTHING, SCOPE_SQL, Reach
from registry.extensions import db

SETTING = "sagip.scope"
_SET = text(f"SELECT set_config('{SETTING}', :scope, true)")
_SET_WITH_ROLE = text(f"SELECT set_config('{SETTING}', :scope, true), set_config('role', :role, true)")


def scope_for(user) -> str:
    """The database scope of ``user``: the jurisdiction rule of ``registry.auth.reach``."""
    return Reach.of(user).db_scope


def role_sql() -> str | None:
    """The role expression of the token lookup (unbound role names), or None without role switching."""
    return None if not _roles() else ("CASE WHEN " + SCOPE_SQL + " = '*' THEN CAST(:full_role AS text) "
                                      "ELSE CAST(:scoped_role AS text) END")


def role_params() -> dict:
    roles = _roles()
    return {"full_role": roles[0], "scoped_role": roles[1]} if roles else {}


def _roles() -> tuple[str, str] | None:
    """(the role of unscoped transactions, the role of scoped ones), or None when roles are not switched."""
    config = current_app.config
    if not config["REGISTRY_DB_ROLE"] or not config["REGISTRY_WORKER_DB_ROLE"]:
        return None
    return config["REGISTRY_WORKER_DB_ROLE"], config["REGISTRY_DB_ROLE"]


def _statement(scope: str) -> tuple:
    roles = _roles()
    if roles is None:
        return _SET, {"scope": scope}
    return _SET_WITH_ROLE, {"scope": scope, "role": roles[0] if scope == EVERYTHING else roles[1]}


def remember(scope: str) -> None:
    """Record the scope already set in the current transaction, for the later ones of this session."""
    db.session.info["db_scope"] = scope


def use(scope: str) -> None:
    """Bind this session's transactions, the current one included, to ``scope`` (and its role)."""
    session = db.session()
    session.info["db_scope"] = scope
    if session.in_transaction():
        session.execute(*_statement(scope))


def use_everything() -> None:
    """Workers and the command line act for the service itself."""
    use(EVERYTHING)


def everything_statement() -> tuple:
    """(statement, parameters) that bind a transaction of a connection outside the session (a worker's
    helper thread) to the service's own scope and role, as ``use_everything`` does for the session."""
    return _statement(EVERYTHING)


def statement_for(reach: Reach) -> tuple:
    """(statement, parameters) binding a transaction of another connection (a streamed answer) to ``reach``."""
    return _statement(reach.db_scope)


def _after_begin(session, transaction, connection) -> None:
    scope = session.info.get("db_scope")
    if scope is not None:
        connection.execute(*_statement(scope))


def init_app(app) -> None:
    """Switch every new connection to the application role (the workers': theirs); carry the scope
    across transactions."""
    worker = app.config.get("REGISTRY_PROCESS") == "worker"
    role = app.config["REGISTRY_WORKER_DB_ROLE" if worker else "REGISTRY_DB_ROLE"]
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
