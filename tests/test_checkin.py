"""Self check-in (SPEC §10): ``/checkin/{token}`` with the real database, Redis and worker."""
from __future__ import annotations

import logging
import re
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.conftest import count, make_app, national_body
from tests.test_authorization_matrix import settle
from tests.test_imports import wait_for_job

HOTLINE = "1348"
DUBAI = {"lat": 25.1124, "lon": 55.1980}
MUSCAT = {"lat": 23.5880, "lon": 58.3829}  # across the border: Oman
CRISIS = {"name": "Gulf floods", "kind": "flood", "severity": "high",
          "area": {"type": "circle", "center": {"lat": 25.2, "lon": 55.3}, "radius_km": 40}, "zones_km": [50]}
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def form_token(html: str) -> str:
    found = _FORM_TOKEN.search(html)
    assert found, "the page has no form_token field"
    return found.group(1)


def declare(client, headers, body=CRISIS) -> str:
    response = client.post("/api/v1/crises", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    crisis = response.get_json()
    assert wait_for_job(client, headers, crisis["latest_run"]["job_id"])["status"] == "succeeded"
    return crisis["id"]


def link_for(db, crisis_id, national_id) -> str:
    """The person's check-in path, as a campaign sends it."""
    from registry.checkin import links
    url = links.ensure_many(crisis_id, [national_id])[national_id]
    db.session.commit()
    return "/checkin/" + url.rsplit("/", 1)[1]


@pytest.fixture
def world(app, client, db, desk, admin, celery_worker):
    """A national in Dubai (languages ``fil``), a crisis over Dubai, the person's link; a hotline."""
    import uuid
    hotline = app.config["REGISTRY_HOTLINE"]
    app.config["REGISTRY_HOTLINE"] = HOTLINE
    response = client.post("/api/v1/nationals", json=national_body(languages=["fil"]), headers=desk)
    assert response.status_code == 201, response.get_json()
    national_id = uuid.UUID(response.get_json()["id"])
    crisis_id = uuid.UUID(declare(client, admin))
    yield SimpleNamespace(national=national_id, crisis=crisis_id, path=link_for(db, crisis_id, national_id),
                          admin=admin, desk=desk)
    app.config["REGISTRY_HOTLINE"] = hotline
    settle(db)


def answer(client, path, **fields):
    page = client.get(path)
    body = {"form_token": form_token(page.get_data(as_text=True)), "date_of_birth": "1990-04-12",
            "status": "safe", "household_present": "2", "note": "At my cousin's place"}
    body.update(fields)
    return client.post(path, data={k: v for k, v in body.items() if v is not None})


def welfare_events(db, national_id) -> list:
    db.session.rollback()
    return db.session.execute(text("SELECT source, status, contact_channel, contact_outcome FROM welfare_events "
                                   "WHERE national_id = :n ORDER BY id"), {"n": national_id}).all()


def the_link(db, national_id):
    db.session.rollback()
    return db.session.execute(text("SELECT failed_attempts, locked_at FROM checkin_links WHERE national_id = :n"),
                              {"n": national_id}).one()


def test_the_page_shows_only_the_crisis_and_the_given_name_in_the_persons_language(client, world):
    response = client.get(world.path)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Gulf floods" in html and "Maria Luisa" in html
    for personal in ("Dela Cruz", "P1234567A", "+971501234567", "maria@example.org", "1990-04-12", "Dubai"):
        assert personal not in html
    assert '<html lang="fil" dir="ltr">' in html and "Kumusta" in html
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "<script>" not in html
    assert "Set-Cookie" not in response.headers
    english = client.get(world.path + "?lang=en").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in english and "How are you?" in english
    arabic = client.get(world.path + "?lang=ar").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in arabic


def test_a_right_answer_records_a_self_welfare_status_a_location_report_and_the_answer(client, db, world):
    response = answer(client, world.path, status="needs_evacuation", lat=str(DUBAI["lat"]), lon=str(DUBAI["lon"]),
                      accuracy_m="35")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert welfare_events(db, world.national) == [("self", "needs_evacuation", "other", "reached")]
    report = db.session.execute(text("SELECT source, precision_m FROM location_reports WHERE national_id = :n "
                                     "ORDER BY reported_at DESC LIMIT 1"), {"n": world.national}).one()
    assert report == ("self_report", 35.0)
    stored = db.session.execute(text("SELECT status, household_present, note, accuracy_m, ST_Y(location) "
                                     "FROM checkin_answers WHERE national_id = :n"), {"n": world.national}).one()
    assert stored[:4] == ("needs_evacuation", 2, "At my cousin's place", 35.0)
    assert stored[4] == pytest.approx(DUBAI["lat"])
    national = db.session.execute(text("SELECT location_source, jurisdiction_country FROM nationals WHERE id = :n"),
                                  {"n": world.national}).one()
    assert national == ("self_report", "AE")
    # The audit trail names the person, never the token.
    events = db.session.execute(text("SELECT object_ids, details::text FROM audit_events "
                                     "WHERE action = 'checkin.checkin' ORDER BY id")).all()
    assert events and all(ids == [world.national] for ids, _ in events)
    token = world.path.rsplit("/", 1)[1]
    assert not any(token in details for _, details in events)


def test_a_point_across_the_border_moves_the_jurisdiction_and_the_next_run_uses_it(client, db, world, admin):
    response = answer(client, world.path, lat=str(MUSCAT["lat"]), lon=str(MUSCAT["lon"]), accuracy_m="20")
    assert response.status_code == 200
    db.session.rollback()
    assert db.session.execute(text("SELECT jurisdiction_country FROM nationals WHERE id = :n"),
                              {"n": world.national}).scalar() == "OM"
    # A new run of a crisis over Muscat finds the person there, a precise point (certainty high).
    oman = declare(client, admin, {**CRISIS, "name": "Muscat storm",
                                   "area": {"type": "circle", "center": MUSCAT, "radius_km": 10}})
    rows = client.get(f"/api/v1/crises/{oman}/exposure", query_string={"purpose": "test"},
                      headers=admin).get_json()["items"]
    assert [(r["national_id"], r["zone"], r["certainty"]) for r in rows] == [(str(world.national), "inside", "high")]


def test_without_a_location_only_the_status_is_recorded(client, db, world):
    assert answer(client, world.path, status="needs_assistance", note=None).status_code == 200
    assert welfare_events(db, world.national) == [("self", "needs_assistance", "other", "reached")]
    assert db.session.execute(text("SELECT count(*) FROM location_reports WHERE source = 'self_report'")).scalar() == 0


def test_five_wrong_dates_of_birth_lock_the_link_and_the_right_one_is_refused_after(client, db, world):
    for tries_left in (4, 3, 2, 1):
        response = answer(client, world.path, date_of_birth="1991-01-01")
        assert response.status_code == 403
        assert f": {tries_left}." in response.get_data(as_text=True)
    locked = answer(client, world.path, date_of_birth="1991-01-01")
    assert locked.status_code == 423
    sixth = client.post(world.path, data={"date_of_birth": "1990-04-12", "status": "safe"})
    assert sixth.status_code == 423
    assert HOTLINE in sixth.get_data(as_text=True) and HOTLINE in client.get(world.path).get_data(as_text=True)
    assert client.get(world.path).status_code == 423
    assert welfare_events(db, world.national) == []
    assert count(db, "checkin_answers") == 0
    attempts, locked_at = the_link(db, world.national)
    assert attempts == 5 and locked_at is not None


def test_an_expired_link_answers_410_with_the_hotline(client, db, world):
    db.session.execute(text("UPDATE checkin_links SET expires_at = now() - interval '1 minute'"))
    db.session.commit()
    response = client.get(world.path)
    assert response.status_code == 410 and HOTLINE in response.get_data(as_text=True)


def test_a_check_in_after_the_crisis_closed_is_410_and_records_nothing(client, db, world):
    page = client.get(world.path).get_data(as_text=True)
    closed = client.patch(f"/api/v1/crises/{world.crisis}", json={"status": "closed"}, headers=world.admin)
    assert closed.status_code == 200, closed.get_json()
    response = client.post(world.path, data={"form_token": form_token(page), "date_of_birth": "1990-04-12",
                                             "status": "safe"})
    assert response.status_code == 410 and HOTLINE in response.get_data(as_text=True)
    assert welfare_events(db, world.national) == [] and count(db, "checkin_answers") == 0


def test_an_unknown_token_is_a_404_page(client, world):
    response = client.get("/checkin/AAAAAAAAAAAAAAAAAAAAAA")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_bad_answers_are_refused_beside_their_fields_and_nothing_is_stored(client, db, world):
    response = answer(client, world.path, status="fine", household_present="lots", lat="95", lon="55.3")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("status", "household_present", "lat"):
        assert f'id="{field}-error"' in html, field
    assert 'aria-describedby="household_present-error"' in html
    bad_date = answer(client, world.path, date_of_birth="12/04/1990")
    assert bad_date.status_code == 422 and 'id="date_of_birth-error"' in bad_date.get_data(as_text=True)
    half = answer(client, world.path, lat="25.1", lon=None)
    assert half.status_code == 422
    assert welfare_events(db, world.national) == [] and count(db, "checkin_answers") == 0
    assert the_link(db, world.national)[0] == 0  # a malformed answer is no wrong guess


def test_a_form_without_its_signed_field_or_from_another_site_is_refused(client, db, world):
    forged = client.post(world.path, data={"date_of_birth": "1990-04-12", "status": "safe"})
    assert forged.status_code == 400
    token = form_token(client.get(world.path).get_data(as_text=True))
    elsewhere = client.post(world.path, data={"form_token": token, "date_of_birth": "1990-04-12", "status": "safe"},
                            headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 400
    other_link = client.post(world.path, data={"form_token": "1700000000.abc", "date_of_birth": "1990-04-12",
                                               "status": "safe"})
    assert other_link.status_code == 400
    assert welfare_events(db, world.national) == [] and the_link(db, world.national)[0] == 0


def test_the_page_weighs_under_50_kb_with_its_style_and_script(client, world):
    html = client.get(world.path).get_data()
    assets = re.findall(rb'(?:href|src)="(/checkin/static/[^"]+)"', html)
    assert len(assets) == 2
    total = len(html) + sum(len(client.get(a.decode()).get_data()) for a in assets)
    assert total < 50_000, total


def test_requests_beyond_the_per_address_limit_get_a_429_page(db, world):
    limited = make_app(REGISTRY_CHECKIN_REQUESTS_PER_MINUTE=3)
    client = limited.test_client()
    if time.time() % 60 > 55:  # a fixed window: not across its edge
        time.sleep(61 - time.time() % 60)
    statuses = [client.get(world.path).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get(world.path)
    assert refused.mimetype == "text/html" and "Retry-After" in refused.headers


def test_the_token_never_reaches_the_logs(app, world, caplog):
    """Served by Werkzeug (as the development server and the browser tests' live server are): its request
    log names the route; gunicorn's access log likewise."""
    token = world.path.rsplit("/", 1)[1]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO):
            base = f"http://127.0.0.1:{server.server_port}"
            assert urllib.request.urlopen(base + world.path).status == 200
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(urllib.request.Request(base + world.path, data=b"date_of_birth=1999-01-01"))
    finally:
        server.shutdown()
        thread.join(timeout=10)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/checkin/<token>" in logged
    assert token not in logged

    from registry.web.gunicorn_logging import RedactingLogger

    class Config:
        errorlog, accesslog, loglevel, syslog, capture_output, logconfig, logconfig_dict, logconfig_json = \
            "-", None, "info", False, False, None, {}, None
        user, group, umask, access_log_format = 0, 0, 0, '%(h)s "%(m)s %(U)s" %(s)s'
        syslog_addr, syslog_prefix, syslog_facility, disable_redirect_access_to_syslog = "", "", "user", False
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": world.path + "?lang=en", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": world.path, "QUERY_STRING": "lang=en", "REMOTE_ADDR": "127.0.0.1"}
    atoms = RedactingLogger(Config()).atoms(SimpleNamespace(status="200 OK", sent=10, headers=[]), {}, environ,
                                            timedelta(seconds=0))
    assert atoms["U"] == "/checkin/<token>" and token not in atoms["r"] and atoms["q"] == ""


def test_retention_purges_the_answers_of_long_closed_crises(app, client, db, world):
    from registry import retention
    assert answer(client, world.path).status_code == 200
    db.session.execute(text("UPDATE crises SET status = 'closed', closed_at = :at"),
                       {"at": datetime.now(timezone.utc) - timedelta(days=400)})
    db.session.commit()
    with app.app_context():
        assert retention.purge_closed_crises(days=30) >= 1
    assert count(db, "checkin_answers") == 0 and count(db, "checkin_links") == 0


def test_an_officer_issues_a_new_link_after_a_lockout(client, db, world, make_user):
    for _ in range(5):
        answer(client, world.path, date_of_birth="1991-01-01")
    assert client.get(world.path).status_code == 423
    _, embassy = make_user("embassy", ["AE"])
    _, elsewhere = make_user("embassy", ["QA"])
    target = f"/api/v1/crises/{world.crisis}/checkin-links/{world.national}"
    assert client.post(target, headers=elsewhere).status_code == 404
    issued = client.post(target, headers=embassy)
    assert issued.status_code == 200, issued.get_json()
    new_path = urlsplit(issued.get_json()["url"]).path
    assert new_path != world.path and issued.get_json()["generation"] == 1
    assert client.get(world.path).status_code == 404  # the old link stops working
    assert answer(client, new_path).status_code == 200
    assert welfare_events(db, world.national) == [("self", "safe", "other", "reached")]
    assert client.patch(f"/api/v1/crises/{world.crisis}", json={"status": "closed"},
                        headers=world.admin).status_code == 200
    assert client.post(target, headers=embassy).status_code == 409
