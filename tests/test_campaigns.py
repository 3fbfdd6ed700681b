"""Message campaigns (SPEC §10) without a gateway: audience and dry runs, refusals (placeholders, length, a
closed crisis, channels off), permissions and jurisdiction, idempotency, cancel, the resumer and the
duplicate accounting after a dead sender. Sending through Kannel and SMTP: tests/test_campaigns_sending.py."""
from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import count, owner_connection
from tests.test_crises import circle, declare, register

# A circle over the Gulf: Dubai (AE) and Doha (QA) inside.
GULF = (25.25, 53.4)
DUBAI_POINT, DOHA_POINT = (25.2, 55.3), (25.2854, 51.531)
# Nothing listens there: a campaign "sends" into a gateway that is away (its rows wait, queued).
UNREACHABLE_SMS = "http://127.0.0.1:9/cgi-bin/sendsms?username=u&password=p"
TEMPLATE = {"en": "{given_name}, are you safe after the {crisis_name}? Check in: {checkin_link} Hotline {hotline}",
            "fil": "{given_name}, ligtas ka ba sa {crisis_name}? {checkin_link} Hotline {hotline}"}


def messages_url(crisis_id: str) -> str:
    return f"/api/v1/crises/{crisis_id}/messages"


@pytest.fixture(autouse=True)
def gateways_off(app):
    """These tests run without gateways (the session's gateway stack, started by an earlier test, is set aside
    for each test and given back after it)."""
    saved = {name: app.config[name] for name in ("REGISTRY_SMS_URL", "REGISTRY_SMTP_URL")}
    app.config.update(REGISTRY_SMS_URL="", REGISTRY_SMTP_URL="")
    yield
    app.config.update(saved)


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")[1]


@pytest.fixture
def scene(client, desk, coordinator, db, celery_worker):
    """Five AE nationals near Dubai (one Filipino-speaking, one with an Arabic given name and two phones, one
    without phone or email, one whose only phone opted out, one pregnant), one QA national in Doha; a crisis
    over both."""
    people = {
        "maria": register(client, desk, *DUBAI_POINT, phones=["+971500000001"], languages=["fil"],
                          vulnerabilities=[], email="maria@example.org"),
        "fatima": register(client, desk, *DUBAI_POINT, given_names="فاطمة", family_name="Haddad",
                           phones=["+971500000002", "+971500000003"], languages=["ar"], vulnerabilities=[],
                           email=None),
        "nobody": register(client, desk, *DUBAI_POINT, phones=[], email=None, vulnerabilities=[]),
        "stopped": register(client, desk, *DUBAI_POINT, phones=["+971500000004"], vulnerabilities=[],
                            email="stopped@example.org"),
        "pregnant": register(client, desk, *DUBAI_POINT, phones=["+971500000005"], vulnerabilities=["pregnant"],
                             email="p@example.org"),
        "doha": register(client, desk, *DOHA_POINT, host="QA", phones=["+97450000006"], vulnerabilities=[],
                         email="doha@example.org", deployment={"city": "Doha"}),
    }
    db.session.execute(text("INSERT INTO sms_opt_outs (phone) VALUES ('+971500000004')"))
    db.session.commit()
    crisis = declare(client, coordinator, circle(*GULF, 260))
    return {"people": people, "crisis": crisis}


def dry_run(client, headers, crisis_id, **body):
    body = {"channels": ["sms", "email"], "template": TEMPLATE, "dry_run": True, **body}
    return client.post(messages_url(crisis_id), headers=headers, json=body)


def test_a_dry_run_counts_recipients_skips_and_parts_and_stores_nothing(client, coordinator, db, scene):
    response = dry_run(client, coordinator, scene["crisis"]["id"])
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["recipients"] == 6
    sms, email = answer["channels"]["sms"], answer["channels"]["email"]
    assert sms["available"] is False and email["available"] is False  # no gateway configured here
    assert sms["recipients"] == 4 and sms["skipped"] == {"no_phone": 1, "opted_out": 1}
    # The Arabic given name makes one message UCS-2; the others are GSM-7.
    assert sms["messages_by_encoding"] == {"GSM-7": 3, "UCS-2": 1}
    assert sms["parts"] == sum(sms["parts_by_encoding"].values()) and sms["parts_by_encoding"]["UCS-2"] >= 2
    assert email["recipients"] == 4 and email["skipped"] == {"no_email": 2}
    body = response.get_data(as_text=True)
    assert "Maria" not in body and "فاطمة" not in body and "+971" not in body and "example.org" not in body
    assert count(db, "campaigns") == 0 and count(db, "campaign_recipients") == 0 and count(db, "jobs") == 1


def test_the_audience_narrows_like_a_roster_selection(client, coordinator, scene):
    crisis = scene["crisis"]["id"]
    pregnant = dry_run(client, coordinator, crisis, channels=["sms"], audience={"vulnerability": ["pregnant"]})
    assert pregnant.get_json()["recipients"] == 1
    none = dry_run(client, coordinator, crisis, channels=["sms"], audience={"welfare_status": ["safe"]})
    assert none.get_json()["recipients"] == 0
    everyone = dry_run(client, coordinator, crisis, channels=["sms"],
                       audience={"zones": [], "certainty": [], "welfare_status": ["unknown"], "vulnerability": []})
    assert everyone.get_json()["recipients"] == 6
    bad = dry_run(client, coordinator, crisis, audience={"zones": ["moon"], "colour": ["red"]})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]["audience"]) == {"zones", "colour"}


def test_an_embassy_officer_counts_and_reaches_only_their_jurisdiction(client, make_user, scene):
    _, embassy = make_user("embassy", ["QA"])
    answer = dry_run(client, embassy, scene["crisis"]["id"]).get_json()
    assert answer["recipients"] == 1 and answer["channels"]["sms"]["recipients"] == 1


@pytest.mark.parametrize("template, field, named", [
    ("Hello {name}", "template", "{name}"),
    ({"en": "Hi {given_name}", "fil": "Kumusta {pangalan}"}, "template.fil", "{pangalan}"),
    ("Hello {given_name", "template", "Malformed"),
    ({"en": ""}, "template", "empty"),
])
def test_unknown_placeholders_are_422_naming_the_field(client, coordinator, db, scene, template, field, named):
    for dry in (True, False):
        response = dry_run(client, coordinator, scene["crisis"]["id"], template=template, dry_run=dry)
        assert response.status_code == 422, response.get_json()
        problem = response.get_json()
        assert response.content_type == "application/problem+json"
        assert list(problem["errors"]) == [field] and named in problem["errors"][field][0]
    assert count(db, "campaigns") == 0


def test_an_over_long_sms_template_is_422(client, coordinator, db, app, scene):
    limit = app.config["REGISTRY_SMS_MAX_PARTS"]
    long = "{given_name}, " + "please answer this message. " * (limit * 6)
    response = dry_run(client, coordinator, scene["crisis"]["id"], template={"en": "Short {given_name}",
                                                                             "fil": long})
    assert response.status_code == 422
    assert "REGISTRY_SMS_MAX_PARTS" in response.get_json()["errors"]["template.fil"][0]
    # The same text by email only is fine (no parts).
    assert dry_run(client, coordinator, scene["crisis"]["id"], channels=["email"], template=long).status_code == 200
    assert count(db, "campaigns") == 0


def test_a_closed_crisis_is_refused_and_nothing_is_created(client, coordinator, db, app, scene):
    crisis = scene["crisis"]["id"]
    closed = client.patch(f"/api/v1/crises/{crisis}", headers=coordinator, json={"status": "closed"})
    assert closed.status_code in (200, 202), closed.get_json()
    app.config["REGISTRY_SMS_URL"] = UNREACHABLE_SMS
    try:
        for dry in (True, False):
            response = dry_run(client, coordinator, crisis, channels=["sms"], dry_run=dry)
            assert response.status_code == 409, response.get_json()
            assert response.get_json()["code"] == "crisis-closed" and "closed" in response.get_json()["detail"]
    finally:
        app.config["REGISTRY_SMS_URL"] = ""
    assert count(db, "campaigns") == 0 and count(db, "campaign_recipients") == 0


def test_a_channel_that_is_off_says_so(client, coordinator, db, scene):
    response = dry_run(client, coordinator, scene["crisis"]["id"], dry_run=False)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "channel-off"
    assert problem["errors"]["channels"] == ["The sms channel is off: REGISTRY_SMS_URL is not set.",
                                             "The email channel is off: REGISTRY_SMTP_URL is not set."]
    assert count(db, "campaigns") == 0


def test_roles_without_campaigns_are_403(client, desk, make_user, scene):
    _, auditor = make_user("auditor")
    for headers in (desk, auditor):
        assert dry_run(client, headers, scene["crisis"]["id"]).status_code == 403
    assert dry_run(client, make_user("admin")[1], str(uuid.uuid4())).status_code == 404


@pytest.fixture
def gateway_away(app):
    """The SMS channel on, pointing where nothing answers: campaigns are created, their rows stay queued."""
    saved = app.config["REGISTRY_SMS_URL"]
    app.config["REGISTRY_SMS_URL"] = UNREACHABLE_SMS
    yield
    app.config["REGISTRY_SMS_URL"] = saved


def wait_for(predicate, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_idempotency_key_cancel_and_jurisdiction_of_campaigns(client, coordinator, make_user, db, scene,
                                                              gateway_away):
    """Same key twice: one campaign. Cancel: queued rows cancelled, the job finishes. An embassy officer's
    campaign reaches their people only, and is 404 to another embassy."""
    crisis = scene["crisis"]["id"]
    _, qa = make_user("embassy", ["QA"])
    _, ae = make_user("embassy", ["AE"])
    body = {"channels": ["sms"], "template": "Safe? {checkin_link}"}
    first = client.post(messages_url(crisis), headers={**qa, "Idempotency-Key": "click-1"}, json=body)
    assert first.status_code == 202, first.get_json()
    again = client.post(messages_url(crisis), headers={**qa, "Idempotency-Key": "click-1"}, json=body)
    assert again.status_code == 202 and again.get_json()["id"] == first.get_json()["id"]
    assert first.headers["Location"] == f"/api/v1/messages/{first.get_json()['id']}"
    assert count(db, "campaigns") == 1
    campaign = f"/api/v1/messages/{first.get_json()['id']}"
    # The job drew the audience: the QA national only.
    wait_for(lambda: client.get(campaign, headers=qa).get_json()["counts"]["total"] == 1)
    assert client.get(campaign, headers=ae).status_code == 404
    assert client.post(f"{campaign}/cancel", headers=ae).status_code == 404
    assert client.get(campaign, headers=coordinator).status_code == 200
    page = client.get(f"{campaign}/recipients", headers=qa).get_json()
    assert page["total"] == 1 and page["items"][0]["national_id"] == scene["people"]["doha"]
    assert page["items"][0]["sms"]["phone"] == "+97450••••06" and page["items"][0]["sms"]["phone_position"] == 1
    cancelled = client.post(f"{campaign}/cancel", headers=qa)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    job = wait_for(lambda: (j := client.get(f"/api/v1/jobs/{first.get_json()['job_id']}", headers=qa).get_json())
                   ["status"] in ("succeeded", "failed") and j)
    assert job["status"] == "succeeded", job
    counts = client.get(campaign, headers=qa).get_json()["counts"]
    assert counts["cancelled"] == 1 and counts["sent"] == 0 and counts["queued"] == 0
    listed = client.get(messages_url(crisis), headers=ae).get_json()
    assert listed["total"] == 0
    assert client.get(messages_url(crisis), headers=coordinator).get_json()["total"] == 1


def test_a_dead_senders_rows_are_resent_and_counted_as_possible_duplicates(app, db, scene):
    """A sender killed mid-batch leaves rows ``sending`` (never handed over) and one ``submitting`` (maybe
    sent): once their leases expire, another sender takes them; only the submitting one counts as a possible
    duplicate. The job's attempts are reset by progress."""
    from registry.campaigns import sending
    from registry.campaigns.models import Campaign
    from registry.jobs.models import Job

    crisis = db.session.execute(text("SELECT id, name FROM crises")).one()
    run = db.session.execute(text("SELECT id FROM exposure_runs WHERE status = 'succeeded'")).scalar()
    campaign = Campaign(crisis_id=crisis.id, run_id=run, channels=["email"], templates={"en": "Safe?"},
                        audience={}, status="sending")
    db.session.add(campaign)
    db.session.flush()
    added = sending.audience.materialise(campaign.id, crisis.id, run, ["email"], {}, sending.Reach.everywhere(),
                                         ["en"], "en")
    assert added == 6
    # The job a killed worker was running (no outbox message: nothing dispatches it but the resumer).
    job = Job(kind="campaign", status="running", attempts=2, params={"campaign_id": str(campaign.id)})
    db.session.add(job)
    db.session.flush()
    campaign.job_id = job.id
    db.session.commit()
    with owner_connection() as conn:  # what a SIGKILL leaves: claims with expired leases
        conn.execute("""UPDATE campaign_recipients SET state = 'sending', lease_until = now() - interval '1 s'
                        WHERE campaign_id = %s AND state = 'queued'""", (campaign.id,))
        conn.execute("""UPDATE campaign_recipients SET state = 'submitting', attempts = 1
                        WHERE id = (SELECT min(id) FROM campaign_recipients WHERE campaign_id = %s
                                    AND state = 'sending')""", (campaign.id,))
        conn.execute("UPDATE campaigns SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (campaign.id,))
    # Claiming as a restarted sender would: the submitting row is flagged, the sending ones are not.
    claimed = db.session.execute(sending._CLAIM, {"campaign_id": campaign.id, "batch": 100, "lease_s": 0,
                                                  "cancelled": False}).all()
    db.session.commit()
    assert len(claimed) == 4
    flags = dict(db.session.execute(text("SELECT state, count(*) FILTER (WHERE possible_duplicate) FROM "
                                         "campaign_recipients WHERE campaign_id = :c GROUP BY state"),
                                    {"c": campaign.id}).all())
    assert flags == {"sending": 1, "skipped": 0}
    # The beat's resumer re-dispatches the silent campaign's job; the worker runs it (a third start: progress
    # had reset nothing here, and the email channel is off in this test, so the job fails with that reason,
    # its rows kept).
    assert sending.resume_stalled() == [campaign.id]
    assert sending.resume_stalled() == []  # not again until the heartbeat is stale once more
    wait_for(lambda: db.session.execute(text("SELECT status FROM jobs WHERE id = :j"), {"j": job.id}).scalar()
             == "failed" or db.session.rollback())
    error = db.session.execute(text("SELECT error FROM jobs WHERE id = :j"), {"j": job.id}).scalar()
    assert "REGISTRY_SMTP_URL" in error["message"]
    assert db.session.execute(text("SELECT status FROM campaigns WHERE id = :c"), {"c": campaign.id}).scalar() \
        == "failed"


def test_recipients_of_a_closed_crisis_are_purged_with_its_records(client, coordinator, db, scene, gateway_away):
    from registry import retention
    crisis = scene["crisis"]["id"]
    started = client.post(messages_url(crisis), headers=coordinator,
                          json={"channels": ["sms"], "template": "Safe? {checkin_link}"})
    assert started.status_code == 202, started.get_json()
    campaign = f"/api/v1/messages/{started.get_json()['id']}"
    wait_for(lambda: client.get(campaign, headers=coordinator).get_json()["counts"]["total"] > 0)
    client.post(f"{campaign}/cancel", headers=coordinator)
    assert client.patch(f"/api/v1/crises/{crisis}", headers=coordinator, json={"status": "closed"}).status_code == 200
    retention.purge_closed_crises(days=1)
    assert count(db, "campaign_recipients") > 0  # closed just now: kept
    db.session.execute(text("UPDATE crises SET closed_at = now() - interval '3 days'"))
    db.session.commit()
    retention.purge_closed_crises(days=1)
    assert count(db, "campaign_recipients") == 0 and count(db, "campaigns") == 1
    purged = db.session.execute(text("SELECT result_count FROM audit_events "
                                     "WHERE action = 'retention.purge_campaign_recipients'")).scalar()
    assert purged and purged > 0
