"""Authorisation matrix (SPEC §4 "Who may do what"), generated from the URL map, and the RLS second layer.

EXPECTED below is written from the SPEC table, not from ``registry.auth.access.PERMISSIONS``:
the two are meant to disagree loudly when either changes.
"""
from __future__ import annotations

import io
import itertools
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from registry.api import PUBLIC_ENDPOINTS
from tests.conftest import national_body
from tests.test_imports import csv_bytes, row

ROLES = ("desk", "embassy", "coordinator", "admin", "auditor")
WRITE = frozenset({"desk", "embassy", "admin"})   # register, update nationals
READ = WRITE | {"coordinator"}                    # read, list, search nationals
EXPECTED: dict[str, frozenset[str]] = {
    "api.nationals.create_national": WRITE,
    "api.nationals.list_nationals": READ,
    "api.nationals.search_nationals": READ,
    "api.nationals.get_national": READ,
    "api.nationals.update_national": WRITE,
    "api.nationals.erase_national": WRITE,        # erasure is an update (SPEC names no other rule)
    "api.nationals.add_location": WRITE,
    "api.imports.create_import": frozenset({"desk", "admin"}),
    "api.imports.template": frozenset({"desk", "admin"}),
    "api.jobs.get_job": frozenset(ROLES),         # any role; only the creator and admins see a job
    "api.audit.list_events": frozenset({"admin", "auditor"}),
    "api.places.geocode": READ,                   # reference geography: no personal data, no jurisdiction
    "api.places.country": READ,
}
NATIONAL_ID, JOB_ID, COUNTRY = "<uuid:national_id>", "<uuid:job_id>", "<string:code>"
QA_DEPLOYMENT = {"host_country": "QA", "city": "Doha", "occupation_isco": "5131"}
QA_POINT, AE_POINT = {"lat": 25.2854, "lon": 51.531}, {"lat": 25.2, "lon": 55.3}
# The QA national: "Dela Cruz" matches both nationals, yet its family name appears in no AE record.
OTHER = {"family_name": "Dela Cruz Ramos", "given_names": "Ana Maria", "passport_number": "Q7654321B"}
NATIONALS = "/api/v1/nationals"


def api_routes(app) -> dict[tuple[str, str], str]:
    """(endpoint, method) → URL rule of every authenticated API call."""
    return {(rule.endpoint, method): rule.rule for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("api.") and rule.endpoint not in PUBLIC_ENDPOINTS
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


@pytest.fixture
def world(app, client, make_user, db):
    """A user per role (embassy: AE), and an AE ("own") and a QA ("other") national registered by a desk officer."""
    _, registrar = make_user("desk")
    users = {role: make_user(role, ["AE"] if role == "embassy" else ()) for role in ROLES}
    own = register(client, registrar, national_body(passport_number="P1000001A"))
    other = register(client, registrar, qa_body(**OTHER))
    yield SimpleNamespace(registrar=registrar, users=users, headers={r: h for r, (_, h) in users.items()},
                          own=own, other=other, passports=(f"P{n:07d}A" for n in itertools.count(2000001)))
    app.extensions["celery"].control.purge()  # drop import messages no worker ran


def make_jobs(client, db, w) -> dict[str, str]:
    """A job of each role's own ("desk", "admin", …) and one of the registrar's ("other")."""
    from registry.jobs.models import Job
    jobs = {"other": client.post("/api/v1/imports", headers=w.registrar, **import_file("own")).get_json()["job_id"]}
    for role, (user_id, headers) in w.users.items():
        if role in EXPECTED["api.imports.create_import"]:
            jobs[role] = client.post("/api/v1/imports", headers=headers, **import_file("own")).get_json()["job_id"]
        else:  # roles that may not import may still own jobs (later features start them)
            job = Job(kind="import", status="succeeded", params={}, created_by=user_id)
            db.session.add(job)
            db.session.commit()
            jobs[role] = str(job.id)
    return jobs


def expectation(role: str, endpoint: str, rule: str, where: str) -> str:
    """What SPEC §4 promises: 'forbidden' (403), 'hidden' (404) or 'allowed'."""
    if role not in EXPECTED[endpoint]:
        return "forbidden"
    if where == "other" and role == "embassy" and NATIONAL_ID in rule:
        return "hidden"       # a record outside the jurisdiction is not revealed
    if where == "other" and role == "embassy" and endpoint == "api.nationals.create_national":
        return "forbidden"    # walk-ins only in the jurisdiction; nothing exists there to hide
    if where == "other" and role != "admin" and JOB_ID in rule:
        return "hidden"       # jobs: their creator and admins only
    return "allowed"


def case_request(client, w, endpoint: str, rule: str, role: str, where: str) -> tuple[str, dict, str | None]:
    """(path, keyword arguments, target national id) of one case; valid bodies where easy."""
    other = where == "other"
    national = w.other if other else w.own
    if endpoint == "api.nationals.erase_national":  # a throwaway, so later cases keep their records
        national = register(client, w.registrar, (qa_body if other else national_body)(
            family_name="Throwaway", passport_number=next(w.passports)))
    path = rule.replace(NATIONAL_ID, national).replace(JOB_ID, w.jobs["other" if other else role]) \
        .replace(COUNTRY, "QA" if other else "AE")
    assert "<" not in path, f"no value for the path parameter of {rule}: teach the matrix about it"
    kwargs = {
        "api.nationals.create_national": lambda: {"json": (qa_body if other else national_body)(
            family_name="Walk In", passport_number=next(w.passports))},
        "api.nationals.list_nationals": lambda: {"query_string": {"host_country": "QA"} if other else {}},
        "api.nationals.search_nationals": lambda: {"json": {"q": "Dela Cruz", **({"host_country": "QA"}
                                                                                 if other else {})}},
        "api.nationals.update_national": lambda: {"json": {"email": "x@example.org"}},
        "api.nationals.add_location": lambda: {"json": QA_POINT if other else AE_POINT},
        "api.imports.create_import": lambda: import_file(where),
        "api.audit.list_events": lambda: {"query_string": {"object_id": national}},
        "api.places.geocode": lambda: {"query_string": {"country": "QA", "q": "Doha"} if other
                                       else {"country": "AE", "q": "Dubai"}},
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


def exposed(response, hidden: set[str], where: str) -> list[str]:
    """What an embassy answer gives away of the other jurisdiction."""
    body = response.get_data(as_text=True)
    found = [f"response names {value}" for value in sorted(hidden) if value in body]
    total = (response.get_json(silent=True) or {}).get("total") if response.is_json else None
    if where == "other" and total:
        found.append(f"total {total} counts other-jurisdiction records")
    return found


def test_every_role_gets_exactly_what_spec_section_4_allows(app, client, db, world):
    """Every role × API endpoint × method × own/other jurisdiction: 403, 404 or success as SPEC §4 says."""
    routes = api_routes(app)
    endpoints = {endpoint for endpoint, _ in routes}
    assert not endpoints - EXPECTED.keys(), f"API endpoints without a rule in EXPECTED: {endpoints - EXPECTED.keys()}"
    assert not EXPECTED.keys() - endpoints, f"EXPECTED rules for gone endpoints: {EXPECTED.keys() - endpoints}"
    world.jobs = make_jobs(client, db, world)
    secrets = {world.other, OTHER["family_name"], OTHER["passport_number"]}
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
                found += exposed(response, secrets | ({target} if where == "other" and target else set()), where)
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
    assert response.status_code == 200 and response.get_json() == {"items": [], "total": 0, "next_cursor": None}


def test_row_level_security_shows_the_database_only_the_scoped_jurisdiction(world, db):
    """The second layer: raw SQL as the application role sees AE rows with scope AE, none unscoped, all with *."""
    from registry.auth import scope
    columns = {"nationals": "id", "deployments": "national_id", "location_reports": "national_id",
               "next_of_kin": "national_id"}
    for setting, expected in (("AE", {world.own}), ("", set()), ("*", {world.own, world.other})):
        scope.use(setting)
        for table, column in columns.items():
            seen = {str(value) for value in db.session.execute(text(f"SELECT {column} FROM {table}")).scalars()}
            assert seen == expected, f"scope {setting!r}, table {table}"
        db.session.rollback()
    scope.use_everything()
