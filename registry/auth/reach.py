"""The jurisdiction rule, written once: whose records a caller may see (SPEC §4 "Who may do what").

Desk officers, coordinators and admins reach every national; an embassy
officer the nationals whose ``jurisdiction_country`` (the country of the
current location, else the deployment's host country) is one of theirs;
auditors and analysts no personal record at all. ``Reach`` carries that
decision into every form a query takes: an ORM clause (API reads), an SQL
fragment with its parameters (raw statements: diffs, streamed lists, map
clusters), a psycopg composable (worker-built exports), job parameters (a
worker acts for the caller later), and the row-level security scope the
database enforces a second time (``registry.auth.scope``).
"""
from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import false, true

EVERYWHERE_ROLES = frozenset({"desk", "coordinator", "admin"})
JURISDICTION_ROLES = frozenset({"embassy"})
EVERYTHING = "*"  # the row-level security scope of callers who reach everyone

# The same rule in SQL over ``users``, for the token lookup (it sets the database scope in the same round trip).
SCOPE_SQL = ("CASE WHEN users.role IN (" + ", ".join(f"'{r}'" for r in sorted(EVERYWHERE_ROLES)) + ") THEN '*' "
             "WHEN users.role IN (" + ", ".join(f"'{r}'" for r in sorted(JURISDICTION_ROLES)) + ") "
             "THEN array_to_string(users.jurisdiction, ',') ELSE '' END")


@dataclass(frozen=True)
class Reach:
    """Every national (``countries`` None), or those of these host countries (empty: nobody)."""

    countries: tuple[str, ...] | None

    @classmethod
    def of(cls, user) -> Reach:
        if user.role in EVERYWHERE_ROLES:
            return cls(None)
        if user.role in JURISDICTION_ROLES:
            return cls(tuple(sorted(user.jurisdiction)))
        return cls(())

    @classmethod
    def everywhere(cls) -> Reach:
        """The service's own reach (workers, the command line)."""
        return cls(None)

    @property
    def is_everywhere(self) -> bool:
        return self.countries is None

    def clause(self, country_column):
        """An ORM condition on a national's ``jurisdiction_country`` column."""
        if self.countries is None:
            return true()
        return country_column.in_(self.countries) if self.countries else false()

    def sql(self, country_sql: str, name: str = "reach_countries") -> tuple[str, dict]:
        """``(" AND <country_sql> = ANY(:name)", params)`` for a text statement; ``("", {})`` for everywhere."""
        if self.countries is None:
            return "", {}
        return f" AND {country_sql} = ANY(:{name})", {name: list(self.countries)}

    def composed(self, country_sql: str) -> sql.Composable:
        """The same condition for a psycopg ``sql.SQL`` statement (COPY cannot take parameters)."""
        if self.countries is None:
            return sql.SQL("")
        return sql.SQL(" AND {} = ANY({})").format(sql.SQL(country_sql), sql.Literal(list(self.countries)))

    def to_params(self) -> list[str] | None:
        """For a job's parameters (JSON)."""
        return None if self.countries is None else list(self.countries)

    @classmethod
    def from_params(cls, value: list[str] | None) -> Reach:
        return cls(None if value is None else tuple(value))

    @property
    def db_scope(self) -> str:
        """The row-level security scope (``sagip.scope``) of this reach."""
        return EVERYTHING if self.countries is None else ",".join(self.countries)
