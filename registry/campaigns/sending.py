"""Sending a campaign: shared work that survives killed workers, throttled across all of them (SPEC §10).

**Materialising.** The job's first step writes the recipients with one
``INSERT … SELECT`` (``registry.campaigns.audience``; ``ON CONFLICT DO
NOTHING``, so a rerun adds nothing) and marks the campaign ``sending``.

**Claiming.** Sending is shared: any number of sender threads, in any number
of worker processes, claim batches of the campaign's open rows with ``FOR
UPDATE SKIP LOCKED`` (two senders never take one row), each claim a lease
(``LEASE``): a row whose sender died comes back when its lease expires.
Each thread has its own database connection and its own gateway connection
(Kannel's keep-alive HTTP, an SMTP session), so a few threads keep Kannel
busy while one waits for an answer.

**Recording, and what a kill can double.** A row is ``sending`` once claimed,
``submitting`` while its message is handed to the gateway, ``sent`` after the
gateway accepted it. The round trip that marks the next message
``submitting`` also records the previous one's answer (one statement: a
data-modifying CTE), so the only rows whose fate a killed sender leaves unknown
are those left ``submitting``: at most one per sender thread. When their lease
expires, another sender re-sends them and flags them ``possible_duplicate``
(counted in ``/messages/{id}``); rows left ``sending`` were never handed over and
are simply sent. These per-message records are committed durably (synchronous
commit) on the sender's own connection before the message is handed over: with
``synchronous_commit = off`` a crash of the database server (``pg_ctl restart -m
immediate`` in bench/faults.py) lost the last records, and a message already
handed over came back ``sending``, to be sent again without being flagged.
A sender whose database went away stops; when every sender of an attempt stopped
so, the job runner runs the job again once the database is back
(``registry.jobs.runner``) instead of failing the campaign.

**Throttling.** Every SMS waits for its slot in a Redis-held schedule (GCRA:
one slot every ``1/REGISTRY_SMS_RATE`` seconds, shared by every thread and
worker; ``RateLimiter``), so the rate holds however many senders run.

**Phones in order.** A permanent refusal (Kannel 4xx) or a failed delivery
report moves the recipient to the national's next phone (queued again);
opted-out phones are passed over; none left: ``failed``. A gateway that is away
(no connection, 5xx) puts the row back on the same phone and the sender backs
off (up to ``BACKOFF_MAX_S`` between tries): the campaign waits for the gateway,
it does not fail its people.

**Surviving kills: attempts and resumption.** ``registry.jobs.runner`` fails a
job after ``REGISTRY_JOB_MAX_ATTEMPTS`` (3) interrupted starts, which protects
workers from poison jobs; a long campaign may legitimately be interrupted more
often than that. So a sender that made progress (recorded a message) resets
the job's attempts to the current one with its heartbeat: only starts that
made no progress at all add up to a failure. The campaign's heartbeat
(``heartbeat_at``) is written every few seconds by each sender; the beat task ``campaigns.resume``
(``resume_stalled``, every few seconds) re-dispatches the job of a campaign
whose heartbeat went stale (its worker died: Redis would otherwise re-deliver
the task only after the visibility timeout), and gives a campaign that a late
failed delivery report re-opened (a next phone to try) a new job. The campaign
is finished when none of its recipients is queued, sending or submitting.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import redis
from flask import current_app
from sqlalchemy import func, select, text, update

from registry.auth import scope
from registry.auth.reach import Reach
from registry.campaigns import audience
from registry.campaigns import templates as tpl
from registry.campaigns.models import OPEN_STATES, Campaign, CampaignRecipient
from registry.campaigns.services import JOB_KIND, SEND_TASK, counts_by_state
from registry.checkin import links
from registry.crises.models import Crisis
from registry.errors import NotFound, Unprocessable
from registry.extensions import database_unreachable, db
from registry.gateways import email as email_gateway
from registry.gateways import sms as sms_gateway
from registry.gateways import text as sms_text
from registry.jobs import services as jobs
from registry.jobs.models import Job

log = logging.getLogger(__name__)

LEASE_S = 30          # a claim's life: far longer than a batch takes (BATCH_SECONDS)
BATCH_SECONDS = 5     # a batch holds about this many seconds of sending at the configured rate
MAX_BATCH = 50
STALE_S = 20          # a sending campaign without a heartbeat this long has lost its worker
HEARTBEAT_S = 2.0     # each sender's heartbeat (and the job's progress) at most this often
BACKOFF_MAX_S = 10.0
DLR_TYPES_DELIVERED = {sms_gateway.DLR_DELIVERED}
DLR_TYPES_FAILED = {sms_gateway.DLR_FAILED, sms_gateway.DLR_SMSC_REJECTED}
RATE_KEY = "sagip:sms-rate"

# ---------------------------------------------------------------------- delivery report addresses


def dlr_mac(recipient_id: int, secret: str | None = None) -> str:
    key = (secret if secret is not None else current_app.config["REGISTRY_SMS_HOOK_SECRET"]).encode()
    digest = hmac.new(key, f"dlr:{recipient_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def dlr_mac_valid(recipient_id: int, mac: str) -> bool:
    return hmac.compare_digest(dlr_mac(recipient_id).encode(), mac.encode())


def dlr_url(base: str, recipient_id: int, mac: str) -> str:
    """Kannel fills ``%d`` with the report's type (1 delivered, 2 failed, 16 rejected by the SMSC, …)."""
    return f"{base}/api/v1/hooks/sms/dlr/{recipient_id}/{mac}?type=%d"


# ---------------------------------------------------------------------- the shared rate


_GCRA = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(t, tat)
local after = slot + interval * count
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil((after - t) * 1000) + 1000)
return string.format('%.6f', slot - t)
"""


class RateLimiter:
    """``REGISTRY_SMS_RATE`` for every sender of every worker: a schedule of slots one ``1/rate`` apart, held in
    Redis (GCRA on Redis's clock). A thread reserves a few consecutive slots at once (about a twentieth of a
    second's worth, ``block``) and spaces its messages itself, so the shared schedule costs one round trip per
    block, not per message; the rate holds whatever the number of senders."""

    def __init__(self, redis_url: str, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.block = max(1, min(50, int(rate / 20))) if rate > 0 else 0
        self._client = redis.Redis.from_url(redis_url) if self.interval else None
        self._script = self._client.register_script(_GCRA) if self._client else None
        self._local = threading.local()

    def _reserve_block(self) -> float:
        """Reserve ``block`` slots; seconds until the first (Redis away: the rate kept locally)."""
        try:
            return float(self._script(keys=[RATE_KEY], args=[repr(self.interval), self.block]))
        except redis.RedisError as exc:
            log.warning("SMS rate kept locally, Redis unavailable: %s", type(exc).__name__)
            return self.interval * self.block

    def wait(self) -> float:
        """Seconds until this thread's next slot (taking more slots when its block is spent)."""
        if not self._script:
            return 0.0
        local = self._local
        if getattr(local, "left", 0) <= 0:
            local.next_at, local.left = time.monotonic() + self._reserve_block(), self.block
        local.left -= 1
        at, local.next_at = local.next_at, local.next_at + self.interval
        return max(0.0, at - time.monotonic())

    def close(self) -> None:
        if self._client:
            self._client.close()


# ---------------------------------------------------------------------- the job


@dataclass
class Plan:
    """What every sender of a job needs, read once (no ORM objects across threads)."""

    campaign_id: uuid.UUID
    job_id: uuid.UUID
    crisis_id: uuid.UUID
    crisis_name: str
    templates: dict
    subject: str
    hotline: str
    needs_links: bool
    callback_base: str
    batch: int
    senders: int
    stop: threading.Event = field(default_factory=threading.Event)
    failures: list = field(default_factory=list)  # the errors senders stopped on


def send_campaign(job: Job) -> dict:
    """The task's work: materialise the recipients once, send until none is open, finish. Rerunnable."""
    campaign = db.session.get(Campaign, uuid.UUID(job.params["campaign_id"]))
    if campaign is None:
        raise NotFound("The campaign is gone (its crisis was deleted).")
    if campaign.status == "queued":
        crisis = db.session.get(Crisis, campaign.crisis_id)
        languages = list(campaign.templates)
        added = audience.materialise(campaign.id, campaign.crisis_id, campaign.run_id, campaign.channels,
                                     campaign.audience, Reach.from_params(campaign.jurisdiction), languages,
                                     tpl.choose(campaign.templates, ()))
        log.info("campaign %s: %d recipient rows (crisis %s)", campaign.id, added, crisis.id if crisis else None)
        now = datetime.now(timezone.utc)
        campaign.status, campaign.started_at, campaign.heartbeat_at = "sending", now, now
        db.session.commit()
    if campaign.status in ("sending", "cancelled"):
        _drain(_plan(campaign, job))
    db.session.expire_all()
    return finish(campaign.id, job.id)


def _plan(campaign: Campaign, job: Job) -> Plan:
    config = current_app.config
    crisis = db.session.get(Crisis, campaign.crisis_id)
    rate = config["REGISTRY_SMS_RATE"]
    batch = max(1, min(MAX_BATCH, int(rate * BATCH_SECONDS / config['REGISTRY_CAMPAIGN_SENDERS']))) if rate > 0 else MAX_BATCH
    return Plan(campaign_id=campaign.id, job_id=job.id, crisis_id=campaign.crisis_id, crisis_name=crisis.name,
                templates=dict(campaign.templates), subject=campaign.subject or crisis.name,
                hotline=config["REGISTRY_HOTLINE"],
                needs_links=any("checkin_link" in tpl.placeholders(t) for t in campaign.templates.values()),
                callback_base=config["REGISTRY_SMS_CALLBACK_URL"], batch=batch,
                senders=config["REGISTRY_CAMPAIGN_SENDERS"])


def _clients(config, channels) -> dict:
    """:raises Unprocessable: a channel of the campaign is off now (it was on when it was asked for)."""
    made = {}
    try:
        if "sms" in channels:
            made["sms"] = sms_gateway.client_from_config(config)
        if "email" in channels:
            made["email"] = email_gateway.client_from_config(config)
    except sms_gateway.ChannelOff as exc:
        raise Unprocessable(str(exc), errors={"channels": [str(exc)]}) from None
    return made


def _drain(plan: Plan) -> None:
    """Send with ``REGISTRY_CAMPAIGN_SENDERS`` threads until no row is open (rows other workers hold are waited for:
    their leases expire if those workers died)."""
    app = current_app._get_current_object()
    clients = _clients(app.config, _channels(plan.campaign_id))
    limiter = RateLimiter(app.config["REDIS_URL"], app.config["REGISTRY_SMS_RATE"])
    try:
        while True:
            threads = [threading.Thread(target=_sender, args=(app, plan, clients, limiter), daemon=True,
                                        name=f"campaign-sender-{i}") for i in range(plan.senders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            db.session.rollback()
            if not _open(plan.campaign_id):
                return
            if len(plan.failures) >= plan.senders:
                if all(database_unreachable(error) for error in plan.failures):
                    raise plan.failures[0]  # the database went away: the runner runs the job again once it is back
                # Every sender failed: fail this attempt (the job runner records it) rather than spin.
                names = sorted({type(error).__name__ for error in plan.failures})
                raise RuntimeError(f"every sender stopped ({', '.join(names)})")
            plan.failures.clear()
            _heartbeat(plan.campaign_id, plan.job_id, progressed=False)
            time.sleep(1.0)
    finally:
        limiter.close()
        for client in clients.values():
            client.close()


def _channels(campaign_id: uuid.UUID) -> list[str]:
    return list(db.session.scalar(select(Campaign.channels).where(Campaign.id == campaign_id)))


def _open(campaign_id: uuid.UUID) -> int:
    return db.session.scalar(select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.state.in_(OPEN_STATES)))


def finish(campaign_id: uuid.UUID, job_id: uuid.UUID) -> dict:
    """Mark the campaign completed (unless cancelled) with its final counts, and the job succeeded (the caller
    commits)."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
    by_state = counts_by_state(campaign_id)
    if campaign.status in ("queued", "sending"):
        campaign.status = "completed"
    if campaign.finished_at is None:
        campaign.finished_at = datetime.now(timezone.utc)
    campaign.counts = by_state
    result = {"campaign_id": str(campaign_id), "counts": by_state}
    jobs.finish(job_id, result)
    return result


def mark_failed(job_id: uuid.UUID) -> None:
    """The campaign of a failed job: failed (its queued rows stay queued: nothing was lost, nothing re-sent)."""
    db.session.execute(update(Campaign).where(Campaign.job_id == job_id,
                                              Campaign.status.in_(("queued", "sending")))
                       .values(status="failed", finished_at=datetime.now(timezone.utc)))


# ---------------------------------------------------------------------- one sender thread

_CLAIM = text("""
UPDATE campaign_recipients r
SET state = 'sending', lease_until = now() + make_interval(secs => :lease_s),
    possible_duplicate = r.possible_duplicate OR r.state = 'submitting'
FROM (SELECT id FROM campaign_recipients
      WHERE campaign_id = :campaign_id
        AND ((state = 'queued' AND NOT :cancelled)
             OR (state IN ('sending', 'submitting') AND lease_until < now()))
      ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED) picked
WHERE r.id = picked.id
RETURNING r.id, r.national_id, r.channel, r.language, r.phone_index, r.attempts""")

# The previous message's answer and the next message's hand-over, in one round trip (module docstring).
_RECORD = """
WITH previous AS (
    UPDATE campaign_recipients
    SET state = %(p_state)s::varchar, error = %(p_error)s::varchar, phone_index = %(p_phone)s::smallint,
        sent_at = CASE WHEN %(p_state)s::varchar = 'sent' THEN now() ELSE sent_at END,
        failed_at = CASE WHEN %(p_state)s::varchar IN ('failed', 'skipped') THEN now() ELSE failed_at END,
        lease_until = NULL
    WHERE id = %(p_id)s::bigint AND state IN ('submitting', 'sending')
)
UPDATE campaign_recipients
SET state = 'submitting', submitted_at = now(), attempts = attempts + 1, phone_index = %(n_phone)s::smallint,
    parts = %(n_parts)s::smallint, encoding = %(n_encoding)s::varchar
WHERE id = %(n_id)s::bigint AND state = 'sending'
RETURNING id"""

_NATIONALS = text("SELECT id, given_names, phones, email FROM nationals WHERE id = ANY(:ids) AND erased_at IS NULL")
_OPTED_OUT = text("SELECT phone FROM sms_opt_outs WHERE phone = ANY(CAST(:phones AS varchar[]))")


@dataclass
class Message:
    recipient_id: int
    channel: str
    to: str | None
    body: str
    phone_index: int
    phones: int            # how many phones the national has (SMS)
    attempts: int
    final: tuple | None = None  # (state, reason) when there is nothing to send
    measure: sms_text.Measure | None = None
    subject: str = ""


class _Recorder:
    """The sender's own autocommit connection for per-message records (durable: the module docstring)."""

    def __init__(self):
        self.connection = db.engine.raw_connection()
        driver = self.connection.dbapi_connection
        self.connection.detach()  # closed for good at the end, never handed back to the pool with its settings
        driver.rollback()
        driver.autocommit = True
        config = current_app.config
        driver.execute("SELECT set_config('sagip.scope', '*', false)")
        if config["REGISTRY_DB_ROLE"] and config["REGISTRY_WORKER_DB_ROLE"]:
            driver.execute(f"SET ROLE {config['REGISTRY_WORKER_DB_ROLE']}")
        self.driver = driver

    def record(self, previous: tuple | None, message: Message | None) -> bool:
        """Record ``previous`` (id, state, reason, phone index) and mark ``message`` submitting; whether it was
        (not: cancelled meanwhile, or taken over by another sender after a lapsed lease)."""
        p_id, p_state, p_error, p_phone = previous if previous else (None, None, None, None)
        cursor = self.driver.execute(_RECORD, {
            "p_id": p_id, "p_state": p_state, "p_error": p_error, "p_phone": p_phone,
            "n_id": message.recipient_id if message else None,
            "n_phone": message.phone_index if message else None,
            "n_parts": message.measure.parts if message and message.measure else None,
            "n_encoding": message.measure.encoding if message and message.measure else None})
        return cursor.fetchone() is not None

    def close(self) -> None:
        self.connection.close()


def _sender(app, plan: Plan, clients: dict, limiter: RateLimiter) -> None:
    with app.app_context():
        scope.use_everything()
        recorder = None
        try:
            recorder = _Recorder()
            backoff, last_beat, pending_progress = 0.0, time.monotonic(), False
            while not plan.stop.is_set():
                cancelled = db.session.scalar(select(Campaign.status).where(Campaign.id == plan.campaign_id)) \
                    == "cancelled"
                if cancelled:  # rows queued again since the cancel (a next phone) are cancelled too
                    db.session.execute(update(CampaignRecipient).where(
                        CampaignRecipient.campaign_id == plan.campaign_id,
                        CampaignRecipient.state.in_(("queued", "sending")))
                        .values(state="cancelled", error="cancelled", lease_until=None))
                batch = db.session.execute(_CLAIM, {"campaign_id": plan.campaign_id, "batch": plan.batch,
                                                    "lease_s": LEASE_S, "cancelled": cancelled}).all()
                if not batch:
                    db.session.commit()
                    if pending_progress:
                        _heartbeat(plan.campaign_id, plan.job_id, progressed=True)
                    return
                messages = _prepare(plan, batch)
                db.session.commit()
                progressed, unavailable = _send_batch(plan, messages, clients, limiter, recorder)
                pending_progress = pending_progress or progressed
                if time.monotonic() - last_beat >= HEARTBEAT_S:  # a count of the campaign's rows: not per batch
                    _heartbeat(plan.campaign_id, plan.job_id, progressed=pending_progress)
                    last_beat, pending_progress = time.monotonic(), False
                backoff = min(BACKOFF_MAX_S, max(0.5, backoff * 2)) if unavailable else 0.0
                if backoff:
                    time.sleep(backoff)
        except Exception as exc:  # logged by type only; the rows' leases bring them back
            log.error("campaign %s: a sender stopped: %s\n%s", plan.campaign_id, type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)))
            plan.failures.append(exc)
            db.session.rollback()
        finally:
            if recorder:
                recorder.close()
            db.session.remove()


def _prepare(plan: Plan, batch) -> list[Message]:
    """Each claimed row's destination and text (links ensured for the batch in one statement)."""
    ids = list({row.national_id for row in batch})
    people = {row.id: row for row in db.session.execute(_NATIONALS, {"ids": ids})}
    phones = sorted({p for person in people.values() for p in (person.phones or ())})
    opted_out = set(db.session.scalars(_OPTED_OUT, {"phones": phones})) if phones else set()
    urls = links.ensure_many(plan.crisis_id, [i for i in ids if i in people]) if plan.needs_links else {}
    messages = []
    for row in batch:
        person = people.get(row.national_id)
        language = row.language if row.language in plan.templates else tpl.choose(plan.templates, ())
        values = {"given_name": tpl.given_name(person.given_names if person else None),
                  "crisis_name": plan.crisis_name, "hotline": plan.hotline,
                  "checkin_link": urls.get(row.national_id, "")}
        body = tpl.render(plan.templates[language], values)
        message = Message(row.id, row.channel, None, body, row.phone_index, 0, row.attempts)
        if row.channel == "email":
            message.subject = tpl.render(plan.subject, values)
        if person is None:
            message.final = ("skipped", "erased")
        elif row.channel == "sms":
            numbers = list(person.phones or ())
            index = row.phone_index
            while index < len(numbers) and numbers[index] in opted_out:
                index += 1
            message.phones, message.phone_index = len(numbers), index
            if index >= len(numbers):
                message.final = ("skipped", "opted_out") if row.attempts == 0 else ("failed", "no_phone_left")
            else:
                message.to, message.measure = numbers[index], sms_text.measure(body)
        else:
            if not person.email:
                message.final = ("skipped", "no_email")
            else:
                message.to = person.email
        messages.append(message)
    return messages


def _outcome(message: Message, sent: sms_gateway.Sent) -> tuple:
    """(id, state, reason, phone index) recording a gateway's answer to ``message``."""
    if sent.accepted:
        return (message.recipient_id, "sent", None, message.phone_index)
    if sent.outcome == sms_gateway.REFUSED:
        if message.channel == "sms" and message.phone_index + 1 < message.phones:
            return (message.recipient_id, "queued", "refused", message.phone_index + 1)
        return (message.recipient_id, "failed", "refused", message.phone_index)
    return (message.recipient_id, "queued", sent.reason or "unavailable", message.phone_index)


def _send_batch(plan: Plan, messages: list[Message], clients: dict, limiter: RateLimiter,
                recorder: _Recorder) -> tuple[bool, bool]:
    """Send a claimed batch; (any message recorded, the gateway was away)."""
    previous, progressed = None, False
    for message in messages:
        if message.final:
            recorder.record((message.recipient_id, *message.final, message.phone_index), None)
            progressed = True
            continue
        if message.channel == "sms":
            wait = limiter.wait()
            if wait > 0.05 and previous:  # record the previous answer now rather than after the wait
                recorder.record(previous, None)
                previous = None
            if wait > 0:
                time.sleep(wait)
        marked = recorder.record(previous, message)
        previous = None
        if not marked:  # cancelled since the claim: not sent
            continue
        if message.channel == "sms":
            sent = clients["sms"].send(message.to, message.body, dlr_url(
                plan.callback_base, message.recipient_id, dlr_mac(message.recipient_id)))
        else:
            sent = clients["email"].send(message.to, message.subject, message.body)
        previous = _outcome(message, sent)
        progressed = progressed or sent.outcome != sms_gateway.UNAVAILABLE
        if sent.outcome == sms_gateway.UNAVAILABLE:
            # The gateway is away: put the rest of the batch back on the queue and back off.
            recorder.record(previous, None)
            _release([m.recipient_id for m in messages[messages.index(message) + 1:]])
            return progressed, True
    if previous:
        recorder.record(previous, None)
    return progressed, False


def _release(recipient_ids: list[int]) -> None:
    if recipient_ids:
        db.session.execute(update(CampaignRecipient).where(CampaignRecipient.id.in_(recipient_ids),
                                                           CampaignRecipient.state == "sending")
                           .values(state="queued", lease_until=None))
        db.session.commit()


def _heartbeat(campaign_id: uuid.UUID, job_id: uuid.UUID, *, progressed: bool) -> None:
    """The campaign's sign of life and the job's progress; progress also resets the job's interrupted
    attempts to this one (module docstring)."""
    total, still_open = db.session.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE state IN ('queued', 'sending', 'submitting')) "
        "FROM campaign_recipients WHERE campaign_id = :c"), {"c": campaign_id}).one()
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(heartbeat_at=text("now()")))
    values = {"progress": round((total - still_open) / total, 4) if total else 0.0}
    if progressed:
        values["attempts"] = 1
    db.session.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(**values))
    db.session.commit()


# ---------------------------------------------------------------------- delivery reports


def delivery_report(recipient_id: int, report_type: int) -> None:
    """Kannel's report on a message: delivered, or failed (the next phone, else failed); other types (buffered,
    accepted by the SMSC) change nothing. The caller commits."""
    row = db.session.scalar(select(CampaignRecipient).where(CampaignRecipient.id == recipient_id)
                            .with_for_update())
    if row is None or row.channel != "sms":
        return
    status = db.session.scalar(select(Campaign.status).where(Campaign.id == row.campaign_id))
    now = datetime.now(timezone.utc)
    if report_type in DLR_TYPES_DELIVERED and row.state in ("sent", "submitting"):
        row.state, row.delivered_at, row.lease_until = "delivered", now, None
        row.sent_at = row.sent_at or now
    elif report_type in DLR_TYPES_FAILED and row.state in ("sent", "submitting", "delivered"):
        phones = db.session.scalar(text("SELECT cardinality(phones) FROM nationals WHERE id = :id"),
                                   {"id": row.national_id}) or 0
        if row.phone_index + 1 < phones and status in ("sending", "completed"):
            row.state, row.phone_index, row.error, row.lease_until = "queued", row.phone_index + 1, \
                "delivery_failed", None
            reopen(row.campaign_id)
        else:
            row.state, row.error, row.failed_at, row.lease_until = "failed", "delivery_failed", now, None
    db.session.flush()


def reopen(campaign_id: uuid.UUID) -> None:
    """A finished campaign with a row queued again (a failed delivery report): sending again, so the resumer
    gives it a new job."""
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.status == "completed")
                       .values(status="sending", finished_at=None, heartbeat_at=None))


# ---------------------------------------------------------------------- resumption (the beat)


def resume_stalled(stale_s: float = STALE_S) -> list[uuid.UUID]:
    """Re-dispatch the job of every campaign whose sender went quiet for ``stale_s`` (or give it a new job when
    its job already ended); the campaigns resumed. Commits."""
    rows = db.session.execute(text("""
SELECT c.id, c.job_id, j.status FROM campaigns c LEFT JOIN jobs j ON j.id = c.job_id
WHERE c.status IN ('queued', 'sending')
  AND coalesce(c.heartbeat_at, c.created_at) < now() - make_interval(secs => :stale_s)
FOR UPDATE OF c SKIP LOCKED"""), {"stale_s": stale_s}).all()
    resumed, dispatch = [], []
    for campaign_id, job_id, job_status in rows:
        if job_status in ("queued", "running"):
            dispatch.append(job_id)
        else:
            campaign = db.session.get(Campaign, campaign_id)
            job = jobs.enqueue(JOB_KIND, SEND_TASK, params={"campaign_id": str(campaign_id)},
                               created_by=campaign.created_by)
            campaign.job_id = job.id
        db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(heartbeat_at=text("now()")))
        resumed.append(campaign_id)
    db.session.commit()  # new jobs are dispatched after this commit (the outbox)
    celery = current_app.extensions["celery"]
    for job_id in dispatch:
        celery.send_task(SEND_TASK, args=[str(job_id)], task_id=str(job_id))
    if resumed:
        log.info("campaigns resumed: %d", len(resumed))
    return resumed
