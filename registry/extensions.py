"""Extension objects, created unbound and initialised in ``create_app``."""
import psycopg
import redis
from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError

from registry.errors import NotFound

# Constraint names are predictable, so migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()


def redis_client() -> redis.Redis:
    """The app's Redis for its own short-lived keys (rate limits, cached counts), with short timeouts: the
    callers carry on without it when it is down."""
    client = current_app.extensions.get("sagip_redis")
    if client is None:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=0.5,
                                      socket_connect_timeout=0.5)
        current_app.extensions["sagip_redis"] = client
    return client


def get_or_404(model, key, message: str):
    """The ``model`` row of primary ``key``. :raises NotFound: with ``message`` when there is none."""
    found = db.session.get(model, key)
    if found is None:
        raise NotFound(message)
    return found


def sql_in(values) -> str:
    """``('a', 'b')``: the right side of an ``IN`` in a check constraint over fixed names."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic filter: PostGIS owns ``spatial_ref_sys``; the migrations own everything else."""
    return not (type_ == "table" and name == "spatial_ref_sys")


# The server went away or cannot take connections now: shut down by an administrator or a crash, starting up
# or in recovery. (A cancelled statement, 57014, is the statement's failure, not the server's.)
_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the database server cannot be reached or
    dropped the connection: work that failed so can be run again once it is back, unlike a real failure."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            sqlstate = getattr(exc, "sqlstate", None)
            if sqlstate is None or sqlstate.startswith("08") or sqlstate in _GONE_SQLSTATES:
                return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False
