"""Mixed load on the Sagip API (SPEC §12): desk officers, embassy officers and coordinators at once.

Run by ``bench/load.py``, which seeds the registry, declares a crisis, builds its roster, creates the
accounts and writes the plan this file reads (``SAGIP_LOAD_PLAN``, a JSON file): tokens per role, ids,
names and passports of nationals in the embassy's jurisdiction, the crisis, the roster and its points,
and registration bodies. By hand, with a plan left by an earlier run and the API on port 8811:

    SAGIP_LOAD_PLAN=bench/out/load-XXXXX/plan.json locust -f bench/locustfile.py --headless \
        -u 16 -r 4 -t 10m --host http://127.0.0.1:8811 --csv bench/out/load-XXXXX/locust

Who does what (task weights within a role; the roles' weights share the users out):

  desk officer (3)      register a national (unique passport)
  embassy officer (6)   read a national (6), search by name (3), look up a passport (1)
  coordinator (2)       a page of the exposure list, sometimes the next ones (10); a point's manifest,
                        answered at once (3); the whole roster as a job: request, poll, download (1)

Every answer that is not 2xx is a failure. Each request takes the next token of its role's pool: the
load is many officers at once, each within the service's per-user limits (bulk reads, passport lookups).
``SAGIP_LOAD_WAIT_S`` (default 0) adds a random wait of up to that many seconds between a user's tasks.
With ``SAGIP_LOAD_RESULT`` set, the final figures per request type are written there as JSON when locust
quits (its ``--csv`` files are written every second and miss the last one).
"""
from __future__ import annotations

import itertools
import json
import os
import random
import time
from urllib.parse import urlencode

from locust import FastHttpUser, between, constant, events, task

_PLAN_PATH = os.environ.get("SAGIP_LOAD_PLAN")
if not _PLAN_PATH:
    raise SystemExit("SAGIP_LOAD_PLAN is not set: run bench/load.py, or point it at a plan.json it wrote")
with open(_PLAN_PATH) as _handle:
    PLAN = json.load(_handle)

PURPOSE = "load test"
EXPORT_POLL_S = 0.5
EXPORT_TIMEOUT_S = 300
_TOKENS = {role: itertools.cycle(tokens) for role, tokens in PLAN["tokens"].items()}
# Unique passports across runs (the run's tag) and load processes (the pid): R + 5 + 5 + 7 = 18 characters.
_PASSPORTS = (f"R{PLAN['run_tag']}{os.getpid() % 100_000:05d}{n:07d}" for n in itertools.count())
_WAIT_S = float(os.environ.get("SAGIP_LOAD_WAIT_S", "0"))


@events.init.add_listener
def _keep_environment(environment, **kwargs):
    global _ENVIRONMENT
    _ENVIRONMENT = environment


@events.quit.add_listener
def _write_result(exit_code, **kwargs):
    """The final figures per request type and in all (``name`` "Aggregated"), times in milliseconds."""
    path = os.environ.get("SAGIP_LOAD_RESULT")
    if not path or _ENVIRONMENT is None or _ENVIRONMENT.runner is None:
        return
    stats = _ENVIRONMENT.runner.stats
    rows = []
    for entry in [*sorted(stats.entries.values(), key=lambda e: e.name), stats.total]:
        rows.append({"name": entry.name, "method": entry.method, "requests": entry.num_requests,
                     "failures": entry.num_failures, "max": entry.max_response_time,
                     **{f"p{int(q * 100)}": entry.get_response_time_percentile(q) if entry.num_requests else None
                        for q in (0.5, 0.95, 0.99)}})
    errors = [{"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
              for e in stats.errors.values()]
    with open(path, "w") as handle:
        json.dump({"exit_code": exit_code, "requests": rows, "errors": errors,
                   "start": stats.start_time, "last_request": stats.total.last_request_timestamp}, handle)


_ENVIRONMENT = None


def _headers(role: str) -> dict:
    return {"Authorization": f"Bearer {next(_TOKENS[role])}", "Accept": "application/json"}


class Officer(FastHttpUser):
    abstract = True
    role = ""
    wait_time = between(0, _WAIT_S) if _WAIT_S > 0 else constant(0)

    def call(self, method: str, path: str, name: str, headers: dict | None = None, check=None, **kwargs):
        """One request: failed unless 2xx and ``check(response)`` (if given) finds nothing wrong; the
        response, or None when it failed."""
        with self.client.request(method, path, name=name, headers=headers or _headers(self.role),
                                 catch_response=True, **kwargs) as response:
            problem = None
            if not 200 <= (response.status_code or 0) < 300:
                problem = f"{response.status_code} {(response.text or '')[:300]}"
            elif check is not None:
                problem = check(response)
            if problem:
                response.failure(problem)
                return None
            response.success()
            return response


class DeskOfficer(Officer):
    weight = 3
    role = "desk"

    @task
    def register(self):
        body = dict(random.choice(PLAN["registrations"]), passport_number=next(_PASSPORTS))
        self.call("POST", "/api/v1/nationals", "POST /nationals (register)", json=body)


class EmbassyOfficer(Officer):
    weight = 6
    role = "embassy"

    @task(6)
    def read(self):
        self.call("GET", f"/api/v1/nationals/{random.choice(PLAN['national_ids'])}", "GET /nationals/{id}")

    @task(3)
    def search_name(self):
        self.call("POST", "/api/v1/nationals/search", "POST /nationals/search (name)",
                  json={"q": random.choice(PLAN["names"]), "limit": 20})

    @task(1)
    def search_passport(self):
        self.call("POST", f"/api/v1/nationals/search?{urlencode({'purpose': PURPOSE})}",
                  "POST /nationals/search (passport)",
                  json={"passport_number": random.choice(PLAN["passports"])})


EXPORT_WHOLE = {"format": "csv", "purpose": PURPOSE}
EXPOSURE_FILTERS = ({}, {}, {"zone": "inside"}, {"certainty": "high"}, {"priority": 1})


class Coordinator(Officer):
    weight = 2
    role = "coordinator"

    @task(10)
    def exposure_pages(self):
        """The first page of the crisis's exposure list, sometimes filtered; then, half the time, more pages."""
        headers = _headers(self.role)  # one officer paging through
        params = {"purpose": PURPOSE, "limit": 100, **random.choice(EXPOSURE_FILTERS)}
        path = f"/api/v1/crises/{PLAN['crisis_id']}/exposure"
        response = self.call("GET", f"{path}?{urlencode(params)}", "GET /crises/{id}/exposure (page 1)",
                             headers=headers)
        while response is not None and random.random() < 0.5:
            cursor = response.json().get("next_cursor")
            if not cursor:
                break
            response = self.call("GET", f"{path}?{urlencode({**params, 'cursor': cursor})}",
                                 "GET /crises/{id}/exposure (next page)", headers=headers)

    @task(3)
    def point_manifest(self):
        """One assembly point's people (what its staff print): small enough to be the answer itself."""
        query = urlencode({"format": "csv", "purpose": PURPOSE,
                           "assembly_point_id": random.choice(PLAN["assembly_point_ids"])})
        self.call("GET", f"/api/v1/rosters/{PLAN['roster_id']}/export?{query}",
                  "GET /rosters/{id}/export (point, csv)", check=lambda r: None if r.status_code == 200 else
                  f"{r.status_code}: a point's manifest should be the answer itself")

    @task(1)
    def roster_export(self):
        """The whole roster: a job (202), polled until it succeeded, then the file (by the same officer). A
        roster of up to REGISTRY_EXPORT_INLINE_ROWS people is the answer itself (200), as on a small seed."""
        headers = _headers(self.role)
        response = self.call("GET", f"/api/v1/rosters/{PLAN['roster_id']}/export?{urlencode(EXPORT_WHOLE)}",
                             "GET /rosters/{id}/export (whole, job)", headers=headers,
                             check=lambda r: None if r.status_code == 202 or r.content else "an empty file")
        if response is None or response.status_code == 200:
            return
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + EXPORT_TIMEOUT_S

        def unfinished(job):
            status = job.json()["status"]
            if status == "failed":
                return f"export job failed: {job.json().get('error')}"
            if status != "succeeded" and time.monotonic() > deadline:
                return f"export job still {status} after {EXPORT_TIMEOUT_S} s"
            return None

        while True:
            time.sleep(EXPORT_POLL_S)
            job = self.call("GET", f"/api/v1/jobs/{job_id}", "GET /jobs/{id} (export poll)", headers=headers,
                            check=unfinished)
            if job is None:
                return
            if job.json()["status"] == "succeeded":
                break
        self.call("GET", job.json()["result"]["download_url"], "GET /jobs/{id}/download", headers=headers,
                  check=lambda r: None if r.content else "an empty file")
