"""Campaigns: asked for by coordinators, admins and embassy officers, sent by a worker (``sending``), read back
with their counts and recipients within the caller's reach (SPEC §10).

A campaign request checks everything that could make it useless before
anything is stored (the crisis active, a succeeded exposure run, the channels
on, the templates' placeholders and length), then stores the campaign and a
queued job in the request's transaction. The audience is drawn by the job
(``audience.materialise``), from the run the request saw, within the
creator's reach saved on the campaign.
"""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import false, func, or_, select, text, true, update

from registry.auth.reach import Reach
from registry.campaigns import audience as audience_sql
from registry.campaigns import templates as tpl
from registry.campaigns.models import CHANNELS, OPEN_STATES, RECIPIENT_STATES, Campaign, CampaignRecipient
from registry.crises.models import Crisis
from registry.crises.services import latest_run
from registry.errors import ApiError, Conflict, Forbidden, NotFound, Unprocessable
from registry.extensions import db
from registry.gateways import email as email_gateway
from registry.gateways import sms as sms_gateway
from registry.gateways import text as sms_text
from registry.jobs import services as jobs
from registry.nationals.models import National
from registry.pagination import Keyset, keyset_page

SEND_TASK = "campaigns.send"
JOB_KIND = "campaign"


class ChannelOff(ApiError):
    status, code, title = 422, "channel-off", "A channel of the campaign is off"


class CrisisClosed(Conflict):
    code, title = "crisis-closed", "The crisis is closed"


def channel_on(channel: str) -> bool:
    config = current_app.config
    return sms_gateway.channel_on(config) if channel == "sms" else email_gateway.channel_on(config)


def channels_status() -> dict[str, bool]:
    """Which channels are configured (the console shows the off ones as such)."""
    return {channel: channel_on(channel) for channel in CHANNELS}


def _template_error(exc: tpl.TemplateError) -> Unprocessable:
    return Unprocessable(f"{exc.field}: {exc.message}", errors={exc.field: [exc.message]})


def lock_crisis(crisis_id: uuid.UUID) -> Crisis:
    """The crisis, locked until the request ends: two requests with one Idempotency-Key take turns.
    :raises NotFound:"""
    crisis = db.session.scalar(select(Crisis).where(Crisis.id == crisis_id).with_for_update())
    if crisis is None:
        raise NotFound("No such crisis.")
    return crisis


def _link_length() -> int:
    return tpl.link_length(current_app.config["REGISTRY_PUBLIC_URL"])


def check_request(crisis: Crisis, data: dict) -> dict:
    """The request resolved: channels, templates, subject, audience and the run; nothing stored.
    :raises CrisisClosed, Unprocessable, ChannelOff:"""
    if crisis.status != "active":
        raise CrisisClosed(f"The crisis is {crisis.status}; nothing was sent or stored. Reopen it to message its "
                           "people.", errors={"crisis": [f"The crisis is {crisis.status}."]})
    channels = list(dict.fromkeys(data["channels"]))
    templates = tpl.as_dict(data["template"])
    try:
        tpl.check(templates)
        if data.get("subject"):
            tpl.placeholders(data["subject"], "subject")
    except tpl.TemplateError as exc:
        raise _template_error(exc) from None
    if "sms" in channels:
        limit = current_app.config["REGISTRY_SMS_MAX_PARTS"]
        hotline = current_app.config["REGISTRY_HOTLINE"]
        for language, template in templates.items():
            measure = tpl.worst_case(template, crisis.name, hotline, _link_length())
            if measure.parts > limit:
                field = tpl.field_of(templates, language)
                message = (f"{measure.parts} SMS parts ({measure.encoding}, {measure.units} "
                           f"{'septets' if measure.encoding == sms_text.GSM7 else 'UTF-16 units'} with a "
                           f"{tpl.GIVEN_NAME_MAX}-character given name); at most {limit} "
                           "(REGISTRY_SMS_MAX_PARTS). Shorten it.")
                raise Unprocessable(f"{field}: the SMS would be too long.", errors={field: [message]})
    run = latest_run(crisis, succeeded=True)
    if run is None:
        newest = latest_run(crisis)
        state = newest.status if newest else "missing"
        raise Unprocessable(f"The exposure run of version {crisis.version} is {state}; retry when it has "
                            "succeeded.", errors={"run": [state]})
    audience = {key: sorted(set(data.get("audience", {}).get(key) or ())) for key in audience_sql.AUDIENCE_KEYS}
    return {"channels": channels, "templates": templates, "subject": data.get("subject"), "audience": audience,
            "run": run}


def _require_channels_on(channels: list[str]) -> None:
    off = [c for c in channels if not channel_on(c)]
    if off:
        setting = {"sms": "REGISTRY_SMS_URL", "email": "REGISTRY_SMTP_URL"}
        messages = [f"The {c} channel is off: {setting[c]} is not set." for c in off]
        raise ChannelOff(" ".join(messages) + " Nothing was stored.", errors={"channels": messages})


def _fallback(templates: dict) -> str:
    return tpl.choose(templates, ())


def dry_run(crisis: Crisis, request: dict, user) -> dict:
    """What the campaign would do, counted (no personal data): recipients, skipped by reason, SMS parts by
    encoding, per channel."""
    templates, hotline = request["templates"], current_app.config["REGISTRY_HOTLINE"]
    rows = audience_sql.rows(crisis.id, request["run"].id, request["channels"], request["audience"],
                             Reach.of(user), list(templates), _fallback(templates))
    link = "x" * _link_length()
    nationals = 0
    per_channel: dict[str, dict] = {}
    for channel in request["channels"]:
        per_channel[channel] = {"available": channel_on(channel), "recipients": 0, "skipped": Counter(),
                                "messages_by_encoding": Counter(), "parts_by_encoding": Counter(), "parts": 0}
    for channel, state, reason, language, given_names in rows:
        entry = per_channel[channel]
        if channel == request["channels"][0]:
            nationals += 1
        if state == "skipped":
            entry["skipped"][reason] += 1
            continue
        entry["recipients"] += 1
        if channel == "sms":
            measure = sms_text.measure(tpl.render(templates[language], {
                "given_name": tpl.given_name(given_names), "crisis_name": crisis.name, "hotline": hotline,
                "checkin_link": link}))
            entry["messages_by_encoding"][measure.encoding] += 1
            entry["parts_by_encoding"][measure.encoding] += measure.parts
            entry["parts"] += measure.parts
    for channel, entry in per_channel.items():
        entry["skipped"] = dict(entry["skipped"])
        if channel == "sms":
            entry["messages_by_encoding"] = dict(entry["messages_by_encoding"])
            entry["parts_by_encoding"] = dict(entry["parts_by_encoding"])
        else:
            for key in ("messages_by_encoding", "parts_by_encoding", "parts"):
                entry.pop(key)
    return {"dry_run": True, "recipients": nationals, "channels": per_channel}


def create(crisis: Crisis, request: dict, user) -> Campaign:
    """A queued campaign and its job. :raises ChannelOff:"""
    _require_channels_on(request["channels"])
    reach = Reach.of(user)
    campaign = Campaign(id=uuid.uuid4(), crisis_id=crisis.id, run_id=request["run"].id, created_by=user.id,
                        channels=request["channels"], templates=request["templates"], subject=request["subject"],
                        audience=request["audience"], jurisdiction=reach.to_params(), status="queued")
    job = jobs.enqueue(JOB_KIND, SEND_TASK, params={"campaign_id": str(campaign.id)}, created_by=user.id)
    campaign.job_id = job.id
    db.session.add(campaign)
    db.session.flush()
    return campaign


# ---------------------------------------------------------------------- reading

def _visible(user):
    """Campaigns the caller may see: all (coordinators, admins); an embassy officer's, those drawn within a
    reach that meets theirs (a coordinator's campaign included, counted for their people only)."""
    reach = Reach.of(user)
    if reach.is_everywhere:
        return true()
    if not reach.countries:
        return false()
    return or_(Campaign.jurisdiction.is_(None), Campaign.jurisdiction.overlap(list(reach.countries)))


def get_campaign(campaign_id: uuid.UUID, user) -> Campaign:
    """:raises NotFound: unknown, or drawn outside the caller's reach (never revealed)."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.id == campaign_id, _visible(user)))
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


_NEWEST_FIRST = Keyset((Campaign.created_at, Campaign.id), (datetime.fromisoformat, uuid.UUID), descending=True)


def list_for_crisis(crisis_id: uuid.UUID, user, *, limit: int, cursor: str | None) -> dict:
    if db.session.get(Crisis, crisis_id) is None:
        raise NotFound("No such crisis.")
    query = select(Campaign).where(Campaign.crisis_id == crisis_id, _visible(user))
    return keyset_page(query, _NEWEST_FIRST, limit=limit, cursor=cursor, key=lambda c: (c.created_at, c.id))


def _reach_join(user) -> tuple[str, dict]:
    """The recipients' nationals within the caller's reach (the query's half of the rule; RLS is the other)."""
    reach_sql, params = Reach.of(user).sql("n.jurisdiction_country")
    return (f" JOIN nationals n ON n.id = r.national_id AND n.erased_at IS NULL{reach_sql}", params)


def counts(campaign: Campaign, user) -> dict:
    """Recipients by state (each once: ``sent`` awaits its delivery report), per channel and together, with
    skipped and failed reasons, possible duplicates and ``replied`` (nationals with a welfare reply by SMS or
    email in the crisis since the campaign started)."""
    join, params = _reach_join(user)
    rows = db.session.execute(text(
        f"SELECT r.channel, r.state, r.error, count(*), count(*) FILTER (WHERE r.possible_duplicate) "
        f"FROM campaign_recipients r{join} WHERE r.campaign_id = :campaign_id GROUP BY 1, 2, 3"),
        {"campaign_id": campaign.id, **params}).all()
    replied = db.session.scalar(text(
        f"SELECT count(DISTINCT r.national_id) FROM campaign_recipients r{join} "
        "WHERE r.campaign_id = :campaign_id AND EXISTS (SELECT 1 FROM welfare_events w WHERE w.crisis_id = "
        ":crisis_id AND w.national_id = r.national_id AND w.source IN ('sms', 'email') AND w.created_at >= "
        ":since)"), {"campaign_id": campaign.id, "crisis_id": campaign.crisis_id,
                     "since": campaign.started_at or campaign.created_at, **params})
    total = {state: 0 for state in RECIPIENT_STATES}
    by_channel = {channel: {state: 0 for state in RECIPIENT_STATES} for channel in campaign.channels}
    reasons: dict[str, Counter] = {channel: Counter() for channel in campaign.channels}
    duplicates = 0
    for channel, state, error, number, duplicate in rows:
        total[state] += number
        by_channel.setdefault(channel, {s: 0 for s in RECIPIENT_STATES})[state] += number
        if error and state in ("skipped", "failed"):
            reasons.setdefault(channel, Counter())[error] += number
        duplicates += duplicate
    for channel, entry in by_channel.items():
        entry["reasons"] = dict(reasons.get(channel, {}))
        entry["total"] = sum(entry[s] for s in RECIPIENT_STATES)
    total["total"] = sum(total[s] for s in RECIPIENT_STATES)
    total["in_flight"] = total["sending"] + total["submitting"]
    total["replied"] = replied or 0
    total["possible_duplicates"] = duplicates
    return {**total, "by_channel": by_channel}


def campaign_out(campaign: Campaign, user) -> dict:
    return {"id": campaign.id, "crisis_id": campaign.crisis_id, "status": campaign.status,
            "channels": campaign.channels, "templates": campaign.templates, "subject": campaign.subject,
            "audience": campaign.audience, "job_id": campaign.job_id, "created_by": campaign.created_by,
            "created_at": campaign.created_at, "started_at": campaign.started_at,
            "finished_at": campaign.finished_at, "counts": counts(campaign, user)}


def mask_phone(phone: str | None) -> str | None:
    """``+97150•••••67``: enough to tell two numbers apart on the phone, not to dial one."""
    if not phone:
        return None
    return phone[:6] + "•" * max(0, len(phone) - 8) + phone[-2:] if len(phone) > 8 else "•" * len(phone)


def recipients_page(campaign: Campaign, user, *, limit: int, cursor: str | None, state: str | None = None) -> dict:
    """One row per national: their channels' states, the phone position tried (its number masked)."""
    reach = Reach.of(user)
    nationals = (select(CampaignRecipient.national_id)
                 .join(National, (National.id == CampaignRecipient.national_id) & National.erased_at.is_(None)
                       & reach.clause(National.jurisdiction_country))
                 .where(CampaignRecipient.campaign_id == campaign.id)
                 .group_by(CampaignRecipient.national_id))
    if state:
        nationals = nationals.having(func.bool_or(CampaignRecipient.state == state))
    total = db.session.scalar(select(func.count()).select_from(nationals.subquery()))
    keyset = Keyset((CampaignRecipient.national_id,), (uuid.UUID,))
    page = keyset_page(nationals, keyset, limit=limit, cursor=cursor, key=lambda n: (n,), total=total)
    ids = page["items"]
    people = {n.id: n for n in db.session.scalars(select(National).where(National.id.in_(ids)))} if ids else {}
    rows: dict[uuid.UUID, list[CampaignRecipient]] = {i: [] for i in ids}
    for row in db.session.scalars(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id,
                                                                  CampaignRecipient.national_id.in_(ids))):
        rows[row.national_id].append(row)
    items = []
    for national_id in ids:
        person = people.get(national_id)
        item = {"national_id": national_id, "family_name": person.family_name if person else None,
                "given_names": person.given_names if person else None}
        for row in rows[national_id]:
            channel = {"state": row.state, "reason": row.error, "attempts": row.attempts, "language": row.language,
                       "sent_at": row.sent_at, "failed_at": row.failed_at,
                       "possible_duplicate": row.possible_duplicate}
            if row.channel == "sms":
                phones = person.phones if person else []
                channel.update({"phone_position": row.phone_index + 1,
                                "phone": mask_phone(phones[row.phone_index]) if row.phone_index < len(phones)
                                else None,
                                "parts": row.parts, "encoding": row.encoding, "delivered_at": row.delivered_at})
            item[row.channel] = channel
        items.append(item)
    page["items"] = items
    return page


def cancel(campaign: Campaign, user) -> Campaign:
    """Stop the campaign: its recipients not yet handed to a gateway become cancelled; messages in flight
    (``submitting``) finish.
    :raises Forbidden: an embassy officer cancelling a campaign drawn beyond their jurisdiction."""
    reach = Reach.of(user)
    if not reach.is_everywhere and (campaign.jurisdiction is None
                                    or not set(campaign.jurisdiction) <= set(reach.countries)):
        raise Forbidden("Only a coordinator, an admin or the embassy whose people it reaches may cancel this "
                        "campaign.")
    if campaign.status in ("queued", "sending"):
        now = datetime.now(timezone.utc)
        campaign.status = "cancelled"
        campaign.finished_at = now
        # Claimed rows not yet handed to a gateway (``sending``) are cancelled too: their sender skips them.
        db.session.execute(update(CampaignRecipient)
                           .where(CampaignRecipient.campaign_id == campaign.id,
                                  CampaignRecipient.state.in_(("queued", "sending")))
                           .values(state="cancelled", error="cancelled", lease_until=None))
        db.session.flush()
    return campaign


def counts_by_state(campaign_id: uuid.UUID) -> dict:
    """Every recipient row of the campaign by state, and the possible duplicates (no reach: the service's)."""
    rows = db.session.execute(select(CampaignRecipient.state, func.count(),
                                     func.count().filter(CampaignRecipient.possible_duplicate))
                              .where(CampaignRecipient.campaign_id == campaign_id)
                              .group_by(CampaignRecipient.state)).all()
    found = {state: 0 for state in RECIPIENT_STATES}
    found.update({state: number for state, number, _ in rows})
    found["possible_duplicates"] = sum(duplicates for _, _, duplicates in rows)
    return found


def open_recipients(campaign_id: uuid.UUID) -> int:
    return db.session.scalar(select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.state.in_(OPEN_STATES)))


def purge_closed(older_than_days: int) -> int:
    """Delete the recipients (who was messaged, on which phone, what became of it) of campaigns of crises closed
    more than ``older_than_days`` ago (SPEC §12 retention); the campaigns themselves, without anyone, stay as
    the record of what was sent. How many recipients."""
    cutoff = func.now() - func.make_interval(0, 0, 0, older_than_days)
    closed = select(Campaign.id).join(Crisis, Crisis.id == Campaign.crisis_id).where(
        Crisis.status == "closed", Crisis.closed_at < cutoff)
    return db.session.execute(
        CampaignRecipient.__table__.delete().where(CampaignRecipient.campaign_id.in_(closed))).rowcount
