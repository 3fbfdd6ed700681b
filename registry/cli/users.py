"""``registry users …``: create, list, disable, rotate tokens, set passwords, invite. Each change is audited."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from registry.audit import services as audit
from registry.auth import services, sessions
from registry.auth.models import ROLES
from registry.errors import ApiError
from registry.extensions import db
from registry.users import services as users_admin


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
@click.option("--username", default=None, help="The console sign-in name (default: derived from the name).")
@with_appcontext
def create_user(name: str, role: str, jurisdiction: str, username: str | None):
    """Create a user and print a new token for it alone on the last line (its username on stderr)."""
    try:
        user = users_admin.create(name, role, [c for c in jurisdiction.split(",") if c.strip()], username,
                                  by=_operator())
    except ApiError as exc:
        raise _cli_error(exc) from None
    token, _ = users_admin.issue_token(user, by=_operator())
    db.session.commit()
    click.echo(f"created user {user.id} ({role}), username {user.username}", err=True)
    click.echo(token)


@users.command("set-password")
@click.argument("user")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from the first line of stdin (never from the command line).")
@with_appcontext
def set_password(user: str, password_stdin: bool):
    """Set USER's console password (id, username or name); their console sessions end."""
    target = _user(user)
    line = click.get_text_stream("stdin").readline().rstrip("\r\n")
    try:
        users_admin.set_password(target, line, by=_operator())
    except ApiError as exc:
        raise _cli_error(exc) from None
    db.session.commit()
    click.echo(f"password set for {target.username or target.id}")


@users.command("invite")
@click.argument("user")
@with_appcontext
def invite_user(user: str):
    """Print a one-time link for USER to set their console password (REGISTRY_INVITATION_HOURS)."""
    target = _user(user)
    try:
        raw = users_admin.invite(target, by=_operator())
    except ApiError as exc:
        raise _cli_error(exc) from None
    db.session.commit()
    click.echo(sessions.invitation_url(raw))


@users.command("list")
@with_appcontext
def list_users():
    """Every user: id, name, role, jurisdiction, active, live tokens."""
    rows = users_admin.listing()
    audit.record("users.list", actor=_operator(), object_type="user", result_count=len(rows))
    db.session.commit()
    click.echo(f"{'id':36}  {'username':20} {'name':24} {'role':11} {'jurisdiction':14} {'active':6} tokens")
    for row in rows:
        user, live = row.user, row.live_tokens
        click.echo(f"{user.id}  {(user.username or '')[:20]:20} {user.name[:24]:24} {user.role:11} "
                   f"{','.join(user.jurisdiction)[:14]:14} {'yes' if user.active else 'no':6} {live}")


@users.command("disable")
@click.argument("user")
@with_appcontext
def disable_user(user: str):
    """Disable USER (id, username or name): every token and console session stops working at once."""
    target = _user(user)
    try:
        revoked = users_admin.disable(target, by=_operator())
    except ApiError as exc:
        raise _cli_error(exc) from None
    db.session.commit()
    click.echo(f"disabled {target.id}; {revoked} token(s) revoked")


@users.command("enable")
@click.argument("user")
@with_appcontext
def enable_user(user: str):
    """Let a disabled USER sign in again with their password (their revoked tokens stay revoked)."""
    target = _user(user)
    users_admin.enable(target, by=_operator())
    db.session.commit()
    click.echo(f"enabled {target.id}")


@users.command("rotate")
@click.argument("user")
@click.option("--ttl-days", type=int, default=None, help="Lifetime of the new token (default REGISTRY_TOKEN_TTL_DAYS).")
@with_appcontext
def rotate_token(user: str, ttl_days: int | None):
    """Revoke USER's tokens and print a new one alone on the last line."""
    target = _user(user)
    try:
        token, revoked = users_admin.issue_token(target, ttl_days, revoke=True, by=_operator())
    except ApiError as exc:
        raise _cli_error(exc) from None
    db.session.commit()
    click.echo(f"revoked {revoked} token(s) of {target.id}", err=True)
    click.echo(token)
