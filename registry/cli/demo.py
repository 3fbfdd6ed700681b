"""``registry demo``: demo users, generated nationals, assembly points and a declared crisis with its roster.

Everything goes through the service's own paths: the nationals through the
import (run here, in-process, with a progress bar), the crisis's exposure run
and first roster through the job runner, so the demo is complete when the
command ends. A second run with the same seed loads no nationals again (its
first passport is already registered) but prints new tokens.
"""
from __future__ import annotations

import secrets
import time
from datetime import date

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from registry.assembly_points.models import AssemblyPoint
from registry.assembly_points.services import create_point
from registry.auth import scope, sessions
from registry.auth.models import User
from registry.auth.services import create_user, issue_token, service_user
from registry.crises.models import Crisis
from registry.crises.services import declare, latest_run, mark_run_failed, run_exposure
from registry.crypto import keyring
from registry.demo import DEMO_CRISIS, DEMO_POINTS, DEMO_USERS, generate_rows, rows_to_csv
from registry.extensions import db
from registry.cli.imports import import_in_process
from registry.imports.rows import COLUMNS
from registry.jobs.runner import run_job
from registry.nationals.models import National
from registry.rosters import build
from registry.rosters.models import Roster
from registry.rosters.services import request_roster
from registry.checkin.services import self_register
from registry.crises.models import Exposure
from registry.replies.services import receive


@click.command("demo")
@click.option("--nationals", default=5000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@with_appcontext
def demo(nationals: int, seed: int):
    """Load a realistic demo: nationals in several host countries and cities, demo users, a crisis."""
    scope.use_everything()
    user_id = service_user().id
    _users()
    if nationals > 0:
        _nationals(nationals, seed, db.session.get(User, user_id))
    _crisis(db.session.get(User, user_id))  # after the nationals: its first run finds them


def _users() -> None:
    """The demo users (once), each with a fresh token and console password, printed."""
    users = []
    for name, role, jurisdiction in DEMO_USERS:
        user = db.session.scalar(select(User).where(User.name == name, User.role == role))
        if user is None:
            free = db.session.scalar(select(User.id).where(User.username == role)) is None
            user = create_user(name, role, jurisdiction, username=role if free else None)
        password = secrets.token_urlsafe(12)  # new each run: a demo's password is never one to remember
        sessions.set_password(user, password)
        users.append((user, issue_token(user), password))
    db.session.commit()
    click.echo("Demo users (API tokens and console passwords are shown once; a new run makes new ones):")
    for user, token, password in users:
        where = f" [{','.join(user.jurisdiction)}]" if user.jurisdiction else ""
        click.echo(f"  {user.name:<17} {user.role + where:<20} {token}")
    click.echo("Console sign-in (/console/login), username / password:")
    for user, _, password in users:
        click.echo(f"  {user.username:<12} {password}")


def _nationals(count: int, seed: int, user) -> None:
    started = time.perf_counter()
    rows = generate_rows(count, seed, as_of=date.today())
    first_passport = rows[0][COLUMNS.index("passport_number")]
    if db.session.scalar(select(National.id).where(
            National.nationality == "PH",
            National.passport_index.in_(keyring().blind_indexes("passport", first_passport)))):
        click.echo(f"The demo (seed {seed}) is already loaded: its first passport is registered. Nothing imported.")
        return
    job = import_in_process(f"demo-seed{seed}.csv", rows_to_csv(rows), user, label=f"importing {count} nationals")
    result = job.result
    click.echo(f"created {result['created']}, duplicates {result['duplicates']}, rejected {result['rejected']} "
               f"in {time.perf_counter() - started:.1f} s")
    for error in result["errors"][:20]:
        click.echo(f"  row {error['row']}: {error['field']}: {error['message']}", err=True)


def _crisis(user) -> None:
    """One declared crisis (once), with its assembly points, its exposure run and a first roster."""
    if db.session.scalar(select(Crisis.id).where(Crisis.name == DEMO_CRISIS["name"])):
        return
    if not db.session.scalar(select(AssemblyPoint.id).limit(1)):
        for name, kind, lat, lon, capacity, country in DEMO_POINTS:
            create_point({"name": name, "kind": kind, "location": {"lat": lat, "lon": lon}, "capacity": capacity,
                          "country": country, "active": True})
    crisis = declare(dict(DEMO_CRISIS), user)
    crisis_id, user_id = crisis.id, user.id
    db.session.info.pop("sagip_outbox_pending", None)  # computed here; the relay's later message is skipped
    db.session.commit()
    run_job(str(latest_run(db.session.get(Crisis, crisis_id)).job_id), run_exposure, on_failure=mark_run_failed)
    db.session.expire_all()
    run = latest_run(db.session.get(Crisis, crisis_id))
    click.echo(f"Declared the demo crisis {crisis_id} ({DEMO_CRISIS['name']}): {run.status}, "
               f"{(run.counts or {}).get('total', 0)} exposed.")
    if run.status != "succeeded":
        return
    roster = request_roster(crisis_id, {"vehicle_capacity": 40, "max_distance_km": 100}, db.session.get(User, user_id))
    roster_id = roster.id
    db.session.info.pop("sagip_outbox_pending", None)
    db.session.commit()
    run_job(str(roster.job_id), build.build, on_failure=build.mark_failed)
    db.session.expire_all()
    roster = db.session.get(Roster, roster_id)
    counts = roster.counts or {}
    click.echo(f"Built its roster {roster_id}: {roster.status}, {counts.get('assigned', 0)} assigned to "
               f"{len(roster.params['assembly_point_ids'])} assembly points in {counts.get('vehicles', 0)} "
               f"vehicles, {counts.get('unassigned', 0)} unassigned.")
    _outreach(crisis_id)


# What the crisis's first hours bring back (SPEC §10), so that the inbox and the verification queue have
# something to show: replies by SMS (matched with a note to read, a call for help, an unknown number) and a
# self-registration of someone not registered.
DEMO_REPLIES = ("1 ligtas kami ng mga anak ko, nasa bubong kami", "TULONG baha na sa loob ng bahay",
                "3 please we need to leave, water rising")
DEMO_UNKNOWN = ("+971509990001", "Ako si Ana, hindi ako rehistrado, nasa Deira kami, walang tubig")
DEMO_SELF_REGISTRATION = {"family_name": "Bautista", "given_names": "Rowena", "date_of_birth": date(1991, 3, 14),
                          "phone": "+971509990002", "sex": "F", "lat": 25.2697, "lon": 55.3095,
                          "where": "Deira, near the gold souk"}


def _outreach(crisis_id) -> None:
    crisis = db.session.get(Crisis, crisis_id)
    crisis.self_registration = True
    run = latest_run(crisis)
    people = db.session.execute(
        select(National.phones).join(Exposure, Exposure.national_id == National.id)
        .where(Exposure.run_id == run.id, Exposure.zone == "inside", National.phones != [])
        .order_by(Exposure.distance_km).limit(len(DEMO_REPLIES))).scalars().all()
    for phones, text in zip(people, DEMO_REPLIES):
        receive(phones[0], text)
    receive(*DEMO_UNKNOWN)
    self_register(crisis, dict(DEMO_SELF_REGISTRATION))
    db.session.commit()
    click.echo(f"Replies in the inbox: {len(people) + 1}; a self-registration awaits verification; "
               "self-registration is on for the demo crisis.")
