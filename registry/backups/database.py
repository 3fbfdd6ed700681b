"""The database side of a backup: a consistent snapshot, pg_dump and pg_restore (PostgreSQL client 15), the
cluster's roles the grants name, and row counts.

Everything here talks to PostgreSQL directly (psycopg and the client programs), not through the Flask app:
a restore runs before the service's keys are in place. The password of the connection URL reaches the
client programs through PGPASSWORD, never their command line (visible to every user of the machine).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The tables row-level security filters show every row to a transaction of this scope (migration 0002).
SCOPE_EVERYTHING = "SELECT set_config('sagip.scope', '*', true)"

# Ordinary tables of the database's own schemas (not PostgreSQL's, not an extension's: spatial_ref_sys).
_OWN_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1, 2"""

# Anything of the database's own in a restore target: relations, functions, types (extensions' excepted).
_OWN_OBJECTS = """
SELECT kind || ' ' || format('%I.%I', nspname, name) FROM (
  SELECT 'relation' AS kind, c.relnamespace AS namespace, c.relname AS name, 'pg_class'::regclass AS classid,
         c.oid AS objid
  FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT 'function', p.pronamespace, p.proname, 'pg_proc'::regclass, p.oid FROM pg_proc p
  UNION ALL
  SELECT 'type', t.typnamespace, t.typname, 'pg_type'::regclass, t.oid FROM pg_type t
  WHERE t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class
                                                         WHERE oid = t.typrelid) = 'c')
) AS objects JOIN pg_namespace n ON n.oid = objects.namespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = objects.classid AND d.objid = objects.objid
                  AND d.deptype = 'e')
ORDER BY 1 LIMIT 5"""

# Roles the database's grants name (and the roles that are members of them, such as the workers' role),
# without login: the service's own roles (sagip_app, sagip_system), which live in the cluster, not the dump.
_ROLES = """
WITH RECURSIVE granted AS (
  SELECT (aclexplode(relacl)).grantee AS oid FROM pg_class WHERE relacl IS NOT NULL
  UNION SELECT (aclexplode(proacl)).grantee FROM pg_proc WHERE proacl IS NOT NULL
  UNION SELECT (aclexplode(nspacl)).grantee FROM pg_namespace WHERE nspacl IS NOT NULL
  UNION SELECT unnest(polroles) FROM pg_policy
  UNION SELECT r.oid FROM pg_roles r WHERE r.rolname = ANY(%(configured)s)
), members AS (
  SELECT oid FROM granted
  UNION SELECT m.member FROM pg_auth_members m JOIN members ON m.roleid = members.oid
)
SELECT r.rolname, r.rolbypassrls, r.rolinherit,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1) AS member_of
FROM pg_roles r WHERE r.oid IN (SELECT oid FROM members)
  AND NOT r.rolcanlogin AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%%'
ORDER BY r.rolname"""


class DatabaseError(RuntimeError):
    """A database step failed; the message is safe to print (no row values)."""


def libpq_url(url: str) -> str:
    """The service's SQLAlchemy URL as libpq reads it."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def connect(url: str, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(libpq_url(url), **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {str(exc).strip().splitlines()[0]}") from None


def _client_command(url: str) -> tuple[str, dict]:
    """(connection string without the password, environment with PGPASSWORD) for pg_dump / pg_restore."""
    params = conninfo_to_dict(libpq_url(url))
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return make_conninfo(**params), env


@dataclass
class Source:
    """What a backup records of its database besides the dump, read in the dump's own snapshot."""

    name: str
    server_version: str
    revision: str | None
    counts: dict[str, int]
    roles: list[dict]
    bypasses_rls: bool


def _count(conn: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for schema, table in conn.execute(_OWN_TABLES).fetchall():
        label = table if schema == "public" else f"{schema}.{table}"
        counts[label] = conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table))).fetchone()[0]
    return counts


@contextlib.contextmanager
def snapshot(url: str, configured_roles: list[str]) -> Iterator[tuple[str, Source]]:
    """A read-only snapshot exported for pg_dump (``--snapshot``), open while the context lasts, and what the
    backup records of the database as that snapshot sees it."""
    conn = connect(url)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        conn.execute(SCOPE_EVERYTHING)
        name, version, bypasses = conn.execute(
            "SELECT current_database(), current_setting('server_version'), rolsuper OR rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user").fetchone()
        has_revision = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()[0]
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] if has_revision else None
        roles = [{"name": r[0], "bypassrls": r[1], "inherit": r[2], "member_of": list(r[3])}
                 for r in conn.execute(_ROLES, {"configured": configured_roles}).fetchall()]
        yield snapshot_id, Source(name, version, revision, _count(conn), roles, bypasses)
    finally:
        conn.close()


def counts(url: str) -> dict[str, int]:
    """Rows per table, every row (the scope row-level security shows everything to)."""
    with connect(url) as conn:
        conn.execute(SCOPE_EVERYTHING)
        return _count(conn)


class _Drain(threading.Thread):
    """Reads a child's stderr while it runs (a full pipe would stall it), keeping the first 64 KB."""

    LIMIT = 65536

    def __init__(self, stream):
        super().__init__(daemon=True)
        self._stream = stream
        self.text = b""

    def run(self):
        for line in self._stream:
            if len(self.text) < self.LIMIT:
                self.text += line

    def errors(self, program: str) -> str:
        """The program's own error lines, cut short: a server message may go on to quote a row (DETAIL,
        CONTEXT lines), which is never shown."""
        lines = [line.strip()[:300] for line in self.text.decode(errors="replace").splitlines()
                 if line.startswith(f"{program}: ")]
        return "; ".join(lines[:5]) or f"{program} failed without a message"


class Dump:
    """pg_dump of the snapshot in the custom format, to a pipe (``stdout``): never to a file."""

    def __init__(self, url: str, snapshot_id: str, *, bypasses_rls: bool):
        conninfo, env = _client_command(url)
        # A role bound by row-level security (FORCEd on the national tables) dumps every row by taking the
        # scope that shows them; one that bypasses it dumps with row security off, pg_dump's default.
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c sagip.scope=*").strip()
        command = ["pg_dump", "--format=custom", "--no-password", f"--snapshot={snapshot_id}",
                   f"--dbname={conninfo}"]
        if not bypasses_rls:
            command.insert(1, "--enable-row-security")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.stdout = self.process.stdout
        self._stderr = _Drain(self.process.stderr)
        self._stderr.start()

    def finish(self) -> None:
        """:raises DatabaseError: pg_dump failed."""
        self.stdout.close()
        code = self.process.wait()
        self._stderr.join()
        if code != 0:
            raise DatabaseError(f"pg_dump failed: {self._stderr.errors('pg_dump')}")

    def abort(self) -> None:
        self.process.kill()
        self.process.wait()
        self._stderr.join()


def pg_dump_version() -> str:
    return subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def own_objects(url: str) -> list[str]:
    """A few of the database's own objects; empty when it holds none (only extensions' objects)."""
    with connect(url) as conn:
        return [row[0] for row in conn.execute(_OWN_OBJECTS).fetchall()]


def ensure_roles(url: str, roles: list[dict]) -> list[str]:
    """Create the backup's roles the cluster lacks (as the migrations do: no login, the recorded BYPASSRLS
    and INHERIT), give them their memberships among each other, and make the connecting user a member of
    each (the service switches to them with SET ROLE). Which roles it created.

    :raises DatabaseError: the connecting user may not (creating a BYPASSRLS role takes a superuser).
    """
    created = []
    with connect(url, autocommit=True) as conn:
        try:
            for role in roles:
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role["name"],)).fetchone():
                    continue
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE {} {}").format(
                    sql.Identifier(role["name"]), sql.SQL("BYPASSRLS" if role["bypassrls"] else "NOBYPASSRLS"),
                    sql.SQL("INHERIT" if role["inherit"] else "NOINHERIT")))
                created.append(role["name"])
            names = {role["name"] for role in roles}
            superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
            for role in roles:
                for parent in role["member_of"]:
                    if parent in names and not conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')",
                                                            (role["name"], parent)).fetchone()[0]:
                        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(parent),
                                                                       sql.Identifier(role["name"])))
                if not superuser and not conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')",
                                                      (role["name"],)).fetchone()[0]:
                    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role["name"])))
        except psycopg.errors.InsufficientPrivilege as exc:
            wanted = ", ".join(f"{r['name']} (NOLOGIN{', BYPASSRLS' if r['bypassrls'] else ''})" for r in roles)
            raise DatabaseError(f"the database roles of the service could not be set up ({exc.diag.message_primary})"
                                f": have a superuser create {wanted} and grant them to the connecting user, then "
                                "run the restore again") from None
    return created


class Restore:
    """pg_restore of a custom-format archive written to ``stdin``, in one transaction: if it is killed or
    fails before the end, the database is left as it was."""

    def __init__(self, url: str):
        conninfo, env = _client_command(url)
        # --no-owner: the objects belong to the restoring user, whoever owned them before (the service
        # connects as their owner and switches to its roles). --no-comments: the only comments are the
        # extensions', which CREATE EXTENSION sets itself (and which only their owner may set).
        command = ["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner", "--no-comments",
                   "--no-password", f"--dbname={conninfo}"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, env=env)
        self._stderr = _Drain(self.process.stderr)
        self._stderr.start()

    def write(self, data: bytes) -> None:
        """:raises DatabaseError: pg_restore stopped (an error in the archive's statements)."""
        try:
            self.process.stdin.write(data)
        except BrokenPipeError:
            self.process.wait()
            self._stderr.join()
            raise self._failed() from None

    def _failed(self) -> DatabaseError:
        errors = self._stderr.errors("pg_restore")
        hint = ""
        if any(words in errors for words in ("permission denied", "must be owner", "must have admin option")):
            hint = (" (restore as the role that runs the migrations: it creates the extensions and grants on "
                    "PostGIS's spatial_ref_sys, which takes a superuser, as `registry db upgrade` does)")
        return DatabaseError(f"pg_restore failed: {errors}{hint}")

    def finish(self) -> None:
        """Close the archive: pg_restore commits. :raises DatabaseError: it failed."""
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        code = self.process.wait()
        self._stderr.join()
        if code != 0:
            raise self._failed()

    def abort(self) -> None:
        """Kill pg_restore before it reaches the end of the archive: its transaction never commits."""
        self.process.kill()
        self.process.wait()
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self._stderr.join()


def rearm_unfinished_jobs(url: str) -> int:
    """Jobs queued or running at the time of the backup: their messages were in the old Redis. Mark their
    outbox messages unsent, so the worker's outbox relay sends them again (tasks skip a finished job)."""
    with connect(url) as conn:
        return conn.execute(
            "UPDATE outbox SET dispatched_at = NULL WHERE dispatched_at IS NOT NULL AND job_id IN "
            "(SELECT id FROM jobs WHERE status IN ('queued', 'running'))").rowcount


def analyze(url: str) -> None:
    """Planner statistics for the restored tables (pg_restore leaves none)."""
    with connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
