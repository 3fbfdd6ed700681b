"""Authorisation matrix (SPEC §4 "Who may do what"), generated from the URL map, and the RLS second layer.

EXPECTED below is written from the SPEC table, not from ``registry.auth.access.PERMISSIONS``:
the two are meant to disagree loudly when either changes.
"""
from __future__ import annotations

import io
import itertools
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from registry.web.openapi import API_PREFIX, PUBLIC_ENDPOINTS
from tests.conftest import national_body
from tests.test_imports import csv_bytes, row, wait_for_job

ROLES = ("desk", "embassy", "coordinator", "admin", "auditor", "analyst")
WRITE = frozenset({"desk", "embassy", "admin"})   # register, update nationals
READ = WRITE | {"coordinator"}                    # read, list, search nationals
CRISIS_WRITE = frozenset({"coordinator", "admin"})  # declare, change, close crises
CRISIS_READ = frozenset({"embassy", "coordinator", "admin"})  # read crises
EXPOSURE = frozenset({"embassy", "coordinator", "admin"})     # exposure lists and diffs (embassy: its rows)
ROSTER_READ = frozenset({"embassy", "coordinator", "admin"})  # read and export rosters (embassy: its rows)
WELFARE = frozenset({"embassy", "coordinator", "admin"})      # welfare status (embassy: in jurisdiction)
MESSAGES = frozenset({"embassy", "coordinator", "admin"})     # message campaigns (embassy: its people)
EXPECTED: dict[str, frozenset[str]] = {
    "nationals.create_national": WRITE,
    "nationals.list_nationals": READ,
    "nationals.search_nationals": READ,
    "nationals.get_national": READ,
    "nationals.update_national": WRITE,
    "nationals.erase_national": WRITE,        # erasure is an update (SPEC names no other rule)
    "nationals.add_location": WRITE,
    "imports.create_import": frozenset({"desk", "admin"}),
    "imports.template": frozenset({"desk", "admin"}),
    "jobs.get_job": frozenset(ROLES),         # any role; only the creator and admins see a job
    "audit.list_events": frozenset({"admin", "auditor"}),
    "places.geocode": READ,                   # reference geography: no personal data, no jurisdiction
    "places.country": READ,
    "map.nationals_map": frozenset({"embassy", "coordinator", "admin"}),  # clusters of the caller's reach
    "crises.declare_crisis": CRISIS_WRITE,
    "crises.update_crisis": CRISIS_WRITE,
    "crises.list_crises": CRISIS_READ,
    "crises.get_crisis": CRISIS_READ,
    "crises.exposure": EXPOSURE,
    "crises.exposure_diff": EXPOSURE,
    "crises.get_welfare": WELFARE,            # "welfare like roster entries" (SPEC §10)
    "crises.update_welfare": WELFARE,
    # "declare, change, close crises; assembly points": coordinator and admin; reading them goes with
    # reading crises (no personal data).
    "assembly_points.create_point": CRISIS_WRITE,
    "assembly_points.import_points": CRISIS_WRITE,
    "assembly_points.update_point": CRISIS_WRITE,
    "assembly_points.list_points": CRISIS_READ,
    "assembly_points.get_point": CRISIS_READ,
    "crisis_rosters.create_roster": CRISIS_WRITE,  # "build rosters"
    "crisis_rosters.list_rosters": ROSTER_READ,
    "rosters.get_roster": ROSTER_READ,
    "rosters.list_entries": ROSTER_READ,
    "rosters.get_entry": ROSTER_READ,
    "rosters.roster_diff": ROSTER_READ,
    "rosters.export_roster": ROSTER_READ,
    "rosters.update_entry": WELFARE,
    # The SMS inbox (SPEC §4 "Also"): coordinator, admin, and the embassy of the country the person is in.
    "inbox.list_inbox": frozenset({"embassy", "coordinator", "admin"}),
    "inbox.update_reply": frozenset({"embassy", "coordinator", "admin"}),
    # Any role may ask; only whoever started the export gets the file (checked in expectation()).
    "jobs.download": frozenset(ROLES),
    # "statistics by analyst, coordinator, admin, and embassy officers for their jurisdiction" (SPEC §4).
    "statistics.stocks": frozenset({"analyst", "coordinator", "admin", "embassy"}),
    "statistics.flows": frozenset({"analyst", "coordinator", "admin", "embassy"}),
    "statistics.profile": frozenset({"analyst", "coordinator", "admin", "embassy"}),  # the report, as a job
    "codes.code_list": frozenset(ROLES),  # "code lists are readable by every role" (SPEC §4, §11)
    # "the verification queue by coordinator, admin and the embassy of the country the person is in" (§4)
    "verification.verification_queue": frozenset({"embassy", "coordinator", "admin"}),
    "verification.decide": frozenset({"embassy", "coordinator", "admin"}),
    "checkin_links.issue_link": WELFARE,      # a new check-in link: welfare work (SPEC §10)
    # "message campaigns by coordinator and admin (all) and embassy officers (their jurisdiction's people)"
    "crisis_messages.create_campaign": MESSAGES,
    "crisis_messages.list_campaigns": MESSAGES,
    "messages.get_campaign": MESSAGES,
    "messages.list_recipients": MESSAGES,
    "messages.cancel_campaign": MESSAGES,
}
NATIONAL_ID, JOB_ID, COUNTRY = "<uuid:national_id>", "<uuid:job_id>", "<string(length=2):code>"
CRISIS_ID = "<uuid:crisis_id>"  # crises are not jurisdiction-scoped: own and other use the same one
POINT_ID = "<uuid:point_id>"  # nor are assembly points
ROSTER_ID = "<uuid:roster_id>"  # nor are rosters (their rows are)
CODE_LIST = "<string:list_name>"  # code lists hold no personal data
REPLY_ID = "<uuid:reply_id>"  # SMS replies follow the people they matched
CAMPAIGN_ID = "<uuid:campaign_id>"  # a campaign of the embassy officer's (AE): every allowed role reaches it
QA_DEPLOYMENT = {"host_country": "QA", "city": "Doha", "occupation_isco": "5131"}
QA_POINT, AE_POINT = {"lat": 25.2854, "lon": 51.531}, {"lat": 25.2, "lon": 55.3}
# The QA national: "Dela Cruz" matches both nationals, yet its family name appears in no AE record.
OTHER = {"family_name": "Dela Cruz Ramos", "given_names": "Ana Maria", "passport_number": "Q7654321B"}
NATIONALS = "/api/v1/nationals"
ASSEMBLY_POINT = {"name": "Embassy, Abu Dhabi", "kind": "embassy", "location": {"lat": 24.4539, "lon": 54.3773},
                  "capacity": 400, "country": "AE"}
CRISES = "/api/v1/crises"
# A circle over the Gulf covering Dubai (the AE national) and Doha (the QA national), both inside.
MATRIX_CRISIS = {"name": "Matrix", "kind": "flood", "severity": "high",
                 "area": {"type": "circle", "center": {"lat": 25.25, "lon": 53.4}, "radius_km": 260},
                 "zones_km": [50]}
# What each role's answers must count of the matrix crisis: the embassy officer (AE) only the AE national.
CRISIS_TOTAL = {"embassy": 1, "coordinator": 2, "admin": 2}


def api_routes(app) -> dict[tuple[str, str], str]:
    """(endpoint, method) → URL rule of every authenticated API call."""
    return {(rule.endpoint, method): rule.rule for rule in app.url_map.iter_rules()
            if rule.rule.startswith(API_PREFIX + "/") and rule.endpoint not in PUBLIC_ENDPOINTS
            and not getattr(app.view_functions[rule.endpoint], "public_enter", None)  # gateway hooks: own doors
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def qa_body(**changes) -> dict:
    return national_body(deployment=QA_DEPLOYMENT, location=QA_POINT, **changes)


def register(client, headers, body) -> str:
    response = client.post(NATIONALS, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def import_file(where: str) -> dict:
    """A one-row CSV upload repeating the AE ("own") or QA ("other") national's passport: a duplicate,
    so nothing is stored should a test worker run it while later tests count records."""
    line = row(passport_number=OTHER["passport_number"]) if where == "other" else \
        row(passport_number="P1000001A", host_country="AE", city="Dubai", lat="25.2", lon="55.3")
    return {"data": {"file": (io.BytesIO(csv_bytes([line])), "workers.csv")},
            "content_type": "multipart/form-data"}


def small_crisis(where: str) -> dict:
    """A valid declaration: a 5 km circle around Dubai ("own") or Doha ("other")."""
    center = QA_POINT if where == "other" else AE_POINT
    return {"name": f"Matrix walk-in {where}", "kind": "other", "severity": "low",
            "area": {"type": "circle", "center": center, "radius_km": 5}, "zones_km": []}


def declare(client, headers) -> str:
    """The matrix crisis, declared by an admin, its first exposure run done by the worker."""
    response = client.post(CRISES, json=MATRIX_CRISIS, headers=headers)
    assert response.status_code == 202, response.get_json()
    crisis = response.get_json()
    job = wait_for_job(client, headers, crisis["latest_run"]["job_id"])
    assert job["status"] == "succeeded", job
    return crisis["id"]


def build_roster(client, headers, crisis_id: str) -> str:
    """A roster of the matrix crisis (both nationals: the AE one placed in Abu Dhabi, the QA one too far)."""
    response = client.post(f"{CRISES}/{crisis_id}/rosters", json={"max_distance_km": 200}, headers=headers)
    assert response.status_code == 202, response.get_json()
    assert wait_for_job(client, headers, response.get_json()["job_id"])["status"] == "succeeded"
    return response.get_json()["id"]


def export_jobs(app, client, w) -> dict[str, str]:
    """A finished roster export job of each role that may export (a file to download)."""
    jobs = {}
    inline = app.config["REGISTRY_EXPORT_INLINE_ROWS"]
    app.config["REGISTRY_EXPORT_INLINE_ROWS"] = 0  # every export is built by the worker
    try:
        for role in sorted(ROSTER_READ):
            response = client.get(f"/api/v1/rosters/{w.roster}/export", headers=w.headers[role],
                                  query_string={"format": "csv", "purpose": "matrix"})
            assert response.status_code == 202, response.get_json()
            jobs[role] = response.get_json()["job_id"]
            assert wait_for_job(client, w.headers[role], jobs[role])["status"] == "succeeded"
    finally:
        app.config["REGISTRY_EXPORT_INLINE_ROWS"] = inline
    return jobs


def settle(db, timeout_s: float = 30) -> None:
    """Let the worker finish the jobs a test queued (imports, exposure runs) before the tables are emptied."""
    deadline = time.monotonic() + timeout_s
    busy = "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
    while db.session.execute(text(busy)).scalar() and time.monotonic() < deadline:
        db.session.rollback()
        time.sleep(0.1)
    db.session.rollback()


@pytest.fixture
def world(app, client, make_user, db, celery_worker):
    """A user per role (embassy: AE), an AE ("own") and a QA ("other") national registered by a desk officer,
    and a crisis covering both whose exposure run has succeeded."""
    _, registrar = make_user("desk")
    users = {role: make_user(role, ["AE"] if role == "embassy" else ()) for role in ROLES}
    own = register(client, registrar, national_body(passport_number="P1000001A"))
    other = register(client, registrar, qa_body(**OTHER))
    crisis = declare(client, users["admin"][1])
    point = client.post("/api/v1/assembly-points", headers=users["admin"][1], json=ASSEMBLY_POINT).get_json()["id"]
    roster = build_roster(client, users["admin"][1], crisis)
    campaign = finished_campaign(db, crisis, users["embassy"][0])
    yield SimpleNamespace(registrar=registrar, users=users, headers={r: h for r, (_, h) in users.items()},
                          own=own, other=other, crisis=crisis, point=point, roster=roster, campaign=campaign,
                          passports=(f"P{n:07d}A" for n in itertools.count(2000001)))
    settle(db)
    app.extensions["celery"].control.purge()  # drop messages no worker ran


def finished_campaign(db, crisis_id: str, embassy_id) -> str:
    """A completed campaign of the embassy officer (AE) to the matrix crisis, sent to nobody: the message
    routes' target, without a gateway."""
    from registry.campaigns.models import Campaign
    from registry.crises.models import ExposureRun
    run = db.session.scalar(select(ExposureRun.id).where(ExposureRun.crisis_id == crisis_id))
    campaign = Campaign(crisis_id=crisis_id, run_id=run, created_by=embassy_id, channels=["sms"],
                        templates={"en": "Are you safe?"}, audience={}, jurisdiction=["AE"], status="completed")
    db.session.add(campaign)
    db.session.commit()
    return str(campaign.id)


def make_jobs(client, db, w) -> dict[str, str]:
    """A job of each role's own ("desk", "admin", …) and one of the registrar's ("other")."""
    from registry.jobs.models import Job
    jobs = {"other": client.post("/api/v1/imports", headers=w.registrar, **import_file("own")).get_json()["job_id"]}
    for role, (user_id, headers) in w.users.items():
        if role in EXPECTED["imports.create_import"]:
            jobs[role] = client.post("/api/v1/imports", headers=headers, **import_file("own")).get_json()["job_id"]
        else:  # roles that may not import may still own jobs (later features start them)
            job = Job(kind="import", status="succeeded", params={}, created_by=user_id)
            db.session.add(job)
            db.session.commit()
            jobs[role] = str(job.id)
    return jobs


def make_replies(db, w) -> dict[str, str]:
    """An SMS reply matched to the AE national ("own") and one needing review matched to the QA one ("other")."""
    from registry.replies.models import SmsReply
    replies = {"own": SmsReply(phone="+971501234567", text="SAFE", keyword="SAFE", welfare_status="safe",
                               outcome="applied", national_ids=[w.own], crisis_ids=[w.crisis]),
               "other": SmsReply(phone="+971501234567", text="Where is the bus?", outcome="needs_review",
                                 review_reason="free_text", national_ids=[w.other], crisis_ids=[w.crisis])}
    db.session.add_all(replies.values())
    db.session.commit()
    return {where: str(reply.id) for where, reply in replies.items()}


def expectation(role: str, endpoint: str, rule: str, where: str) -> str:
    """What SPEC §4 promises: 'forbidden' (403), 'hidden' (404) or 'allowed'."""
    if role not in EXPECTED[endpoint]:
        return "forbidden"
    if endpoint == "jobs.download":  # the file is its requester's alone, whatever the role
        return "allowed" if where == "own" and role in ROSTER_READ else "hidden"
    if where == "other" and role == "embassy" and NATIONAL_ID in rule:
        return "hidden"       # a record outside the jurisdiction is not revealed
    if where == "other" and role == "embassy" and endpoint == "nationals.create_national":
        return "forbidden"    # walk-ins only in the jurisdiction; nothing exists there to hide
    if where == "other" and role == "embassy" and REPLY_ID in rule:
        return "hidden"       # a reply matched to another jurisdiction's national
    if where == "other" and role != "admin" and JOB_ID in rule:
        return "hidden"       # jobs: their creator and admins only
    return "allowed"


def case_request(client, w, endpoint: str, rule: str, role: str, where: str) -> tuple[str, dict, str | None]:
    """(path, keyword arguments, target national id) of one case; valid bodies where easy."""
    other = where == "other"
    national = w.other if other else w.own
    if endpoint == "nationals.erase_national":  # a throwaway, so later cases keep their records
        national = register(client, w.registrar, (qa_body if other else national_body)(
            family_name="Throwaway", passport_number=next(w.passports)))
    jobs = w.export_jobs if endpoint == "jobs.download" else w.jobs
    job = (w.jobs["other"] if other else jobs.get(role, w.jobs[role])) if JOB_ID in rule else None
    path = rule.replace(NATIONAL_ID, national).replace(JOB_ID, job or "") \
        .replace(COUNTRY, "QA" if other else "AE").replace(CRISIS_ID, w.crisis) \
        .replace(POINT_ID, w.point).replace(ROSTER_ID, w.roster).replace(CODE_LIST, "countries") \
        .replace(REPLY_ID, w.replies["other" if other else "own"] if REPLY_ID in rule else "") \
        .replace(CAMPAIGN_ID, w.campaign)
    assert "<" not in path, f"no value for the path parameter of {rule}: teach the matrix about it"
    kwargs = {
        "nationals.create_national": lambda: {"json": (qa_body if other else national_body)(
            family_name="Walk In", passport_number=next(w.passports))},
        "nationals.list_nationals": lambda: {"query_string": {"host_country": "QA"} if other else {}},
        "nationals.search_nationals": lambda: {"json": {"q": "Dela Cruz", **({"host_country": "QA"}
                                                                                 if other else {})}},
        "nationals.update_national": lambda: {"json": {"email": "x@example.org"}},
        "nationals.add_location": lambda: {"json": QA_POINT if other else AE_POINT},
        "imports.create_import": lambda: import_file(where),
        "audit.list_events": lambda: {"query_string": {"object_id": national}},
        "map.nationals_map": lambda: {"query_string": {"bbox": "50.5,24.5,52,26.5" if other else "54,24,56,26",
                                                       "zoom": 8}},  # around Doha (QA), or around the UAE
        "places.geocode": lambda: {"query_string": {"country": "QA", "q": "Doha"} if other
                                       else {"country": "AE", "q": "Dubai"}},
        "crises.declare_crisis": lambda: {"json": small_crisis(where)},
        "crises.update_crisis": lambda: {"json": {"severity": "extreme"}},  # no new version, no new run
        "assembly_points.create_point": lambda: {"json": ASSEMBLY_POINT},
        "assembly_points.import_points": lambda: {
            "data": {"file": (io.BytesIO(b"name,kind,lat,lon,capacity,country\nShelter,shelter,24.45,54.38,50,AE\n"),
                              "points.csv")}, "content_type": "multipart/form-data"},
        "assembly_points.update_point": lambda: {"json": {"capacity": 250}},
        "crises.exposure": lambda: {"query_string": {"purpose": "matrix", "format": "json"}},
        "crises.exposure_diff": lambda: {"query_string": {"from": 1, "to": 1, "purpose": "matrix"}},
        "crisis_rosters.create_roster": lambda: {"json": {}},
        "crises.get_welfare": lambda: {"query_string": {"purpose": "matrix"}},
        "crises.update_welfare": lambda: {"json": {"welfare_status": "safe",
                                                   "contact": {"channel": "phone", "outcome": "reached"}}},
        "rosters.update_entry": lambda: {"json": {"welfare_status": "safe",
                                                      "contact": {"channel": "phone", "outcome": "reached"}}},
        "rosters.roster_diff": lambda: {"query_string": {"from": w.roster, "purpose": "matrix"}},
        "rosters.list_entries": lambda: {"query_string": {"purpose": "matrix"}},
        "rosters.export_roster": lambda: {"query_string": {"format": "csv", "purpose": "matrix"}},
        # The other jurisdiction's reply is the only one needing review: the embassy officer must count none.
        "inbox.list_inbox": lambda: {"query_string": {"outcome": "needs_review"} if other else {}},
        "inbox.update_reply": lambda: {"json": {"handled": True}},
        # A registered (not self-registered) national: 409 where allowed, nothing changed.
        "verification.decide": lambda: {"json": {"action": "verify"}},
        "crisis_messages.create_campaign": lambda: {"json": {"channels": ["sms"], "template": "Safe? {checkin_link}",
                                                             "dry_run": True}},
        "statistics.profile": lambda: {"json": {"year": 2025, "format": "xlsx"}},
    }.get(endpoint, dict)()
    return path, kwargs, national if NATIONAL_ID in rule else None


def judge(expect: str, role: str, response) -> tuple[list[str], list[str]]:
    """(leaks, other mismatches) in the status of one answer."""
    status = response.status_code
    if expect != "allowed" and 200 <= status < 300:
        return [f"{status} where {expect}"], []
    if expect == "hidden" and status == 403 and role == "embassy":
        return ["403 reveals that the record exists"], []
    wanted = {"forbidden": 403, "hidden": 404}.get(expect)
    if status >= 500 or (wanted and status != wanted) or (not wanted and status in (401, 403, 404)):
        return [], [f"{status}, expected {expect}: {response.get_data(as_text=True)[:200]}"]
    return [], []


def exposed(response, hidden: set[str], where: str, endpoint: str) -> list[str]:
    """What an embassy answer gives away of the other jurisdiction."""
    body = response.get_data(as_text=True)
    found = [f"response names {value}" for value in sorted(hidden) if value in body]
    total = (response.get_json(silent=True) or {}).get("total") if response.is_json else None
    # Crisis lists count crises (not scoped); exposure totals are checked by counted().
    # Roster entries are checked by counted() too.
    # Campaign lists count campaigns (their recipients are counted within reach by services.counts).
    if where == "other" and total and not endpoint.startswith(("crises.", "assembly_points.",
                                                               "rosters.", "crisis_rosters.", "crisis_messages.")):
        found.append(f"total {total} counts other-jurisdiction records")
    return found


def crisis_counts(endpoint: str, answer, w) -> dict[str, object]:
    """label → number: what an answer counts of the matrix crisis's exposure (its latest run)."""
    def run_total(crisis):
        return ((crisis or {}).get("latest_run") or {}).get("counts", {}) or {}

    if endpoint in ("crises.get_crisis", "crises.update_crisis"):
        return {"latest_run.counts.total": run_total(answer).get("total")}
    if endpoint == "crises.list_crises":
        mine = [item for item in answer.get("items", []) if item.get("id") == w.crisis]
        return {"the crisis listed": len(mine), "latest_run.counts.total": run_total(mine[0] if mine else None)
                .get("total")}
    if endpoint == "crises.exposure":
        return {"total": answer.get("total"), "counts.total": (answer.get("counts") or {}).get("total"),
                "rows": len(answer.get("items", []))}
    return {}


def counted(role: str, endpoint: str, response, w) -> tuple[list[str], list[str]]:
    """(leaks, other mismatches) in what a successful crisis answer counts: the embassy officer's
    answers count the AE national only, everyone else's both."""
    if not 200 <= response.status_code < 300:
        return [], []
    if endpoint in ("rosters.list_entries", "rosters.export_roster", "rosters.get_roster"):
        return roster_counted(role, endpoint, response, w)
    if not endpoint.startswith("crises."):
        return [], []
    answer = response.get_json(silent=True) or {}
    found, wrong = [], []
    for label, number in crisis_counts(endpoint, answer, w).items():
        wanted = 1 if label == "the crisis listed" else CRISIS_TOTAL[role]
        if number == wanted:
            continue
        too_many = role == "embassy" and isinstance(number, int) and number > wanted
        (found if too_many else wrong).append(f"{label} {number}, expected {wanted}"
                                              + (" (counts other-jurisdiction rows)" if too_many else ""))
    if endpoint == "crises.exposure":
        ids = {item["national_id"] for item in answer.get("items", [])}
        wanted_ids = {w.own} if role == "embassy" else {w.own, w.other}
        if ids != wanted_ids:
            (found if ids - wanted_ids else wrong).append(f"rows of {sorted(ids)}, expected {sorted(wanted_ids)}")
    return found, wrong


def roster_counted(role: str, endpoint: str, response, w) -> tuple[list[str], list[str]]:
    """The roster's people in an answer: the embassy officer's the AE national only, everyone else's both."""
    wanted = {w.own} if role == "embassy" else {w.own, w.other}
    if endpoint == "rosters.get_roster":
        counts = response.get_json()["counts"]
        number = counts["assigned"] + counts["unassigned"]
        if number == len(wanted):
            return [], []
        return ([f"counts {number} people, expected {len(wanted)}"], []) if number > len(wanted) else \
            ([], [f"counts {number} people, expected {len(wanted)}"])
    if endpoint == "rosters.export_roster":
        ids = {line.split(",")[0] for line in response.get_data(as_text=True).splitlines()[1:]}
    else:
        ids = {item["national_id"] for item in response.get_json()["items"]}
    if ids == wanted:
        return [], []
    return ([f"rows of {sorted(ids)}, expected {sorted(wanted)}"], []) if ids - wanted else \
        ([], [f"rows of {sorted(ids)}, expected {sorted(wanted)}"])


def test_every_role_gets_exactly_what_spec_section_4_allows(app, client, db, world):
    """Every role × API endpoint × method × own/other jurisdiction: 403, 404 or success as SPEC §4 says."""
    routes = api_routes(app)
    endpoints = {endpoint for endpoint, _ in routes}
    assert not endpoints - EXPECTED.keys(), f"API endpoints without a rule in EXPECTED: {endpoints - EXPECTED.keys()}"
    assert not EXPECTED.keys() - endpoints, f"EXPECTED rules for gone endpoints: {EXPECTED.keys() - endpoints}"
    world.jobs = make_jobs(client, db, world)
    world.export_jobs = export_jobs(app, client, world)
    world.replies = make_replies(db, world)
    secrets = {world.other, OTHER["family_name"], OTHER["given_names"], OTHER["passport_number"]}
    cases, leaks, problems = 0, 0, []
    for (endpoint, method), rule in sorted(routes.items()):
        for role, where in itertools.product(ROLES, ("own", "other")):
            cases += 1
            path, kwargs, target = case_request(client, world, endpoint, rule, role, where)
            watched = role == "embassy" and where == "other" and target and method != "GET"
            before = client.get(f"{NATIONALS}/{target}", headers=world.registrar).get_json() if watched else None
            response = client.open(path, method=method, headers=world.headers[role], **kwargs)
            found, wrong = judge(expectation(role, endpoint, rule, where), role, response)
            if role == "embassy":
                found += exposed(response, secrets | ({target} if where == "other" and target else set()), where,
                                 endpoint)
            more_found, more_wrong = counted(role, endpoint, response, world)
            found, wrong = found + more_found, wrong + more_wrong
            if watched and client.get(f"{NATIONALS}/{target}", headers=world.registrar).get_json() != before:
                found.append("the other-jurisdiction record was changed")
            leaks += bool(found)
            label = f"{role} {method} {rule} ({where})"
            problems += [f"{label}: {w}" for w in wrong] + [f"LEAK {label}: {f}" for f in found]
    print(f"authorization matrix: {cases} cases, {leaks} leaks")
    assert leaks == 0 and not problems, "\n".join(problems)


def test_embassy_lists_and_searches_leave_out_the_other_jurisdiction(client, world):
    """GET /nationals and name or passport search: no QA item, and a total that does not count it."""
    embassy, desk = world.headers["embassy"], world.headers["desk"]
    search = f"{NATIONALS}/search"
    both = client.post(search, json={"q": "Dela Cruz"}, headers=desk).get_json()
    assert both["total"] == 2 and {i["id"] for i in both["items"]} == {world.own, world.other}
    for response in (client.get(NATIONALS, headers=embassy),
                     client.post(search, json={"q": "Dela Cruz"}, headers=embassy)):
        assert response.status_code == 200
        page = response.get_json()
        assert [item["id"] for item in page["items"]] == [world.own] and page["total"] == 1
        assert {item["deployment"]["host_country"] for item in page["items"]} == {"AE"}
    by_passport = {"passport_number": OTHER["passport_number"], "purpose": "matrix test"}
    assert client.post(search, json=by_passport, headers=desk).get_json()["total"] == 1
    response = client.post(search, json=by_passport, headers=embassy)
    assert response.status_code == 200 and response.get_json() == {"items": [], "total": 0, "total_exact": True,
                                                                       "next_cursor": None}


def test_embassy_exposure_leaves_out_the_other_jurisdiction_in_every_format(client, world):
    """The crisis covers both nationals: a coordinator's exposure has both rows, the embassy officer's
    JSON, CSV and GeoJSON only the AE row, the crisis read counts it alone, and diffs leave out the QA row."""
    embassy, coordinator = world.headers["embassy"], world.headers["coordinator"]
    exposure = f"{CRISES}/{world.crisis}/exposure"
    for headers, ids in ((coordinator, {world.own, world.other}), (embassy, {world.own})):
        page = client.get(exposure, query_string={"purpose": "matrix"}, headers=headers).get_json()
        assert {item["national_id"] for item in page["items"]} == ids
        assert page["total"] == page["counts"]["total"] == page["counts"]["inside"] == len(ids)
        crisis = client.get(f"{CRISES}/{world.crisis}", headers=headers).get_json()
        assert crisis["latest_run"]["counts"]["total"] == len(ids)
    for fmt in ("csv", "geojson"):
        response = client.get(exposure, query_string={"purpose": "matrix", "format": fmt}, headers=embassy)
        assert response.status_code == 200, response.get_data(as_text=True)[:200]
        body = response.get_data(as_text=True)
        assert world.own in body
        for secret in (world.other, OTHER["family_name"], OTHER["given_names"], OTHER["passport_number"]):
            assert secret not in body, f"{fmt} names {secret}"
    geojson = client.get(exposure, query_string={"purpose": "matrix", "format": "geojson"}, headers=embassy)
    assert [f["properties"]["national_id"] for f in geojson.get_json()["features"]] == [world.own]
    csv_lines = client.get(exposure, query_string={"purpose": "matrix", "format": "csv"},
                           headers=embassy).get_data(as_text=True).splitlines()
    assert len(csv_lines) == 2 and csv_lines[1].startswith(world.own)  # the header and the AE row
    diff = client.get(f"{exposure}/diff", query_string={"from": 1, "to": 1, "purpose": "matrix"}, headers=embassy)
    assert diff.status_code == 200 and diff.get_json() == {
        "from": 1, "to": 1, "added": [], "removed": [], "changed": [],
        "counts": {"added": 0, "removed": 0, "changed": 0}, "truncated": False}
    # Version 2 covers Dubai only: the QA national drops out, which the embassy officer's diff must not show.
    admin = world.headers["admin"]
    dubai_only = {"type": "circle", "center": AE_POINT, "radius_km": 50}
    changed = client.patch(f"{CRISES}/{world.crisis}", json={"area": dubai_only, "zones_km": []}, headers=admin)
    assert changed.status_code == 200 and changed.get_json()["version"] == 2, changed.get_json()
    assert wait_for_job(client, admin, changed.get_json()["latest_run"]["job_id"])["status"] == "succeeded"
    query = {"from": 1, "to": 2, "purpose": "matrix"}
    removed = client.get(f"{exposure}/diff", query_string=query, headers=coordinator).get_json()["removed"]
    assert [entry["national_id"] for entry in removed] == [world.other]
    diff = client.get(f"{exposure}/diff", query_string=query, headers=embassy)
    assert diff.status_code == 200 and (diff.get_json()["added"], diff.get_json()["removed"]) == ([], [])
    assert diff.get_json()["changed"] == []  # the AE national is inside both versions
    for secret in (world.other, OTHER["family_name"], OTHER["given_names"]):
        assert secret not in diff.get_data(as_text=True)


def test_row_level_security_shows_the_database_only_the_scoped_jurisdiction(world, db):
    """The second layer: raw SQL as the application role sees AE rows with scope AE, none unscoped, all with *."""
    from registry.auth import scope
    columns = {"nationals": "id", "deployments": "national_id", "location_reports": "national_id",
               "next_of_kin": "national_id", "exposures": "national_id"}
    for setting, expected in (("AE", {world.own}), ("", set()), ("*", {world.own, world.other})):
        scope.use(setting)
        for table, column in columns.items():
            seen = {str(value) for value in db.session.execute(text(f"SELECT {column} FROM {table}")).scalars()}
            assert seen == expected, f"scope {setting!r}, table {table}"
        db.session.rollback()
    scope.use_everything()
