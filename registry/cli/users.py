"""``registry users …``: create, list, disable, rotate tokens. Each change is audited."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from registry.audit import services as audit
from registry.auth import services
from registry.auth.models import ROLES
from registry.errors import ApiError
from registry.extensions import db


def _cli_error(exc: ApiError) -> click.ClickException:
    fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
    return click.ClickException(fields or exc.detail)


def _user(ref: str):
    try:
        return services.find_user(ref)
    except ApiError as exc:
        raise _cli_error(exc) from None


def _operator():
    return services.service_user()


@click.group()
def users():
    """Users and their API tokens."""


@users.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--jurisdiction", default="", help="Host countries of an embassy officer, e.g. AE,QA")
@with_appcontext
def create_user(name: str, role: str, jurisdiction: str):
    """Create a user and print a new token for it alone on the last line."""
    try:
        user = services.create_user(name, role, [c for c in jurisdiction.split(",") if c.strip()])
    except ApiError as exc:
        raise _cli_error(exc) from None
    token = services.issue_token(user)
    audit.record("users.create", actor=_operator(), object_type="user", object_ids=[user.id],
                 details={"role": role})
    db.session.commit()
    click.echo(f"created user {user.id} ({role})", err=True)
    click.echo(token)


@users.command("list")
@with_appcontext
def list_users():
    """Every user: id, name, role, jurisdiction, active, live tokens."""
    rows = services.list_users()
    audit.record("users.list", actor=_operator(), object_type="user", result_count=len(rows))
    db.session.commit()
    click.echo(f"{'id':36}  {'name':24} {'role':11} {'jurisdiction':14} {'active':6} tokens")
    for user, live in rows:
        click.echo(f"{user.id}  {user.name[:24]:24} {user.role:11} {','.join(user.jurisdiction)[:14]:14} "
                   f"{'yes' if user.active else 'no':6} {live}")


@users.command("disable")
@click.argument("user")
@with_appcontext
def disable_user(user: str):
    """Disable USER (id or name): every token stops working at once."""
    target = _user(user)
    revoked = services.disable_user(target)
    audit.record("users.disable", actor=_operator(), object_type="user", object_ids=[target.id],
                 result_count=revoked)
    db.session.commit()
    click.echo(f"disabled {target.id}; {revoked} token(s) revoked")


@users.command("rotate")
@click.argument("user")
@click.option("--ttl-days", type=int, default=None, help="Lifetime of the new token (default REGISTRY_TOKEN_TTL_DAYS).")
@with_appcontext
def rotate_token(user: str, ttl_days: int | None):
    """Revoke USER's tokens and print a new one alone on the last line."""
    target = _user(user)
    if not target.active:
        raise click.ClickException("The user is disabled.")
    revoked = services.revoke_tokens(target)
    token = services.issue_token(target, ttl_days)
    audit.record("users.rotate", actor=_operator(), object_type="user", object_ids=[target.id],
                 result_count=revoked)
    db.session.commit()
    click.echo(f"revoked {revoked} token(s) of {target.id}", err=True)
    click.echo(token)
