"""Many workers (SPEC §12): two real `celery worker` processes share one queue of imports, exposure runs,
rosters, exports and message campaigns, with messages delivered twice on purpose, and every job is done once.

The workers are separate processes (solo pool, names w1 and w2) on a broker database of their own, so the
session's in-process worker takes none of this work; each job records the worker that claimed it.
"""
from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

from registry.geo import destination
from tests.conftest import DATA_DIR, TEST_DATABASE_URL, make_app, owner_connection, scan_for_personal_data
from tests.test_imports import csv_bytes, row

# Only the two worker processes started here consume this Redis database (it is emptied first).
WORKERS_REDIS_URL = os.environ.get("SAGIP_TEST_WORKERS_REDIS_URL", "redis://127.0.0.1:6379/12")
ROOT = Path(__file__).resolve().parent.parent
NAMES = ("w1", "w2")

DUBAI, ABU_DHABI, DOHA = (25.2048, 55.2708), (24.4539, 54.3773), (25.2854, 51.531)
CLUSTERS = [(DUBAI, "AE", "Dubai"), (ABU_DHABI, "AE", "Abu Dhabi"), (DOHA, "QA", "Doha")]
FILES, ROWS_PER_FILE = 6, 50  # 300 nationals, 100 around each city; every tenth has a phone and an email
GULF = (25.0, 53.4)  # a 260 km circle over all three cities
TEMPLATE = {"en": "{given_name}, are you safe after the {crisis_name}? Reply SAFE or HELP."}
SKIPPED = "is being run by another worker: this delivery does nothing"


# ---------------------------------------------------------------------------------------------- the workers

class Workers:
    """Two `celery worker` processes (w1, w2) with their logs, and the broker they share."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.broker = redis.Redis.from_url(WORKERS_REDIS_URL)

    def start(self, name: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "solo", "--concurrency", "1",
             "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-heartbeat", "--without-mingle",
             "--without-gossip"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def idle(self) -> bool:
        """Nothing waiting in the queue and nothing delivered but unacknowledged."""
        return self.broker.llen("celery") == 0 and self.broker.hlen("unacked") == 0

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stack(app, gateway_stack, live_server):
    """The session's gateways (Kannel + fakesmsc, SMTP), emptied; delivery reports go to the live server."""
    saved = {name: app.config[name] for name in ("REGISTRY_SMS_CALLBACK_URL", "REGISTRY_SMS_RATE")}
    app.config.update(REGISTRY_SMS_CALLBACK_URL=live_server, REGISTRY_SMS_RATE=50.0)
    gateway_stack.clear()
    yield gateway_stack
    app.config.update(saved)
    gateway_stack.clear()


@pytest.fixture(scope="module")
def gateway_config(app, stack, live_server) -> dict:
    return {"REGISTRY_SMS_URL": stack.sms_url, "REGISTRY_SMTP_URL": stack.smtp_url,
            "REGISTRY_SMS_HOOK_SECRET": stack.hook_secret, "REGISTRY_SMS_CALLBACK_URL": live_server,
            "REGISTRY_SMS_RATE": "50", "REGISTRY_CAMPAIGN_SENDERS": "4"}


@pytest.fixture(scope="module")
def api(app, gateway_config):
    """The API sending to the workers' broker; exports above 10 rows are built by a worker."""
    redis.Redis.from_url(WORKERS_REDIS_URL).flushdb()
    overrides = {k: v for k, v in gateway_config.items() if k not in ("REGISTRY_SMS_RATE", "REGISTRY_CAMPAIGN_SENDERS")}
    return make_app(REDIS_URL=WORKERS_REDIS_URL, REGISTRY_EXPORT_INLINE_ROWS=10, **overrides)


@pytest.fixture(scope="module")
def workers(api, gateway_config, tmp_path_factory):
    env = {**os.environ, **gateway_config, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": WORKERS_REDIS_URL,
           "REGISTRY_DATA_DIR": DATA_DIR}
    pool = Workers(env, tmp_path_factory.mktemp("workers"))
    try:
        for name in NAMES:
            pool.start(name)
        control = api.extensions["celery"].control
        wait_for(lambda: {n.split("@")[0] for reply in control.ping(timeout=0.5) for n in reply} >= set(NAMES),
                 120, "both workers to answer")
        yield pool
    finally:
        pool.stop()
        for name in NAMES:  # what the workers logged holds no passport or phone number
            assert scan_for_personal_data(str(pool.log_dir / f"{name}.log")) == []


# ---------------------------------------------------------------------------------------------- helpers

def jobs(job_ids) -> dict[str, tuple]:
    """{job id: (status, attempts, worker, result)} read as the tables' owner (no session snapshot)."""
    with owner_connection() as conn:
        found = conn.execute("SELECT id::text, status, attempts, worker, result FROM jobs WHERE id = ANY(%s::uuid[])",
                             ([str(j) for j in job_ids],)).fetchall()
    return {job_id: tuple(rest) for job_id, *rest in found}


def settled(job_ids, timeout_s: float = 120) -> dict[str, tuple]:
    """Wait until every job has ended; their rows."""
    return wait_for(lambda: (found := jobs(job_ids)) and len(found) == len(job_ids)
                    and all(status in ("succeeded", "failed") for status, *_ in found.values()) and found,
                    timeout_s, f"{len(job_ids)} jobs to end")


def deliver_again(api, job_ids) -> None:
    """Publish each job's message once more: what a Redis re-delivery, or the relay re-sending, does."""
    with owner_connection() as conn:
        tasks = conn.execute("SELECT job_id::text, task FROM outbox WHERE job_id = ANY(%s::uuid[])",
                             ([str(j) for j in job_ids],)).fetchall()
    assert len(tasks) == len(job_ids)
    celery = api.extensions["celery"]
    for job_id, task in tasks:
        celery.send_task(task, args=[job_id], task_id=job_id)


def scalar(sql: str, *params):
    with owner_connection() as conn:
        return conn.execute(sql, params).fetchone()[0]


def nationals_file(index: int) -> bytes:
    rows = []
    for r in range(ROWS_PER_FILE):
        i = index * ROWS_PER_FILE + r
        (lat, lon), country, city = CLUSTERS[i % 3]
        contact = i % 10 == 0
        phone = (f"+97150{1_000_000 + i}" if country == "AE" else f"+9745{1_000_000 + i}") if contact else ""
        rows.append(row(given_names=f"Juan {chr(65 + i % 26)}{chr(65 + i // 26 % 26)}",
                        date_of_birth=f"19{70 + i % 30}-0{1 + i % 9}-1{i % 10}", passport_number=f"P{6_000_000 + i}A",
                        phones=phone, email=f"p{i}@example.org" if contact else "", host_country=country, city=city,
                        lat=f"{lat + (r % 10) * 0.002:.5f}", lon=f"{lon + (r // 10) * 0.002:.5f}"))
    return csv_bytes(rows)


def circle(center, radius_km):
    return {"type": "circle", "center": {"lat": center[0], "lon": center[1]}, "radius_km": radius_km}


def declare(client, headers, name, center, radius_km) -> tuple[str, str]:
    response = client.post("/api/v1/crises", headers=headers, json={
        "name": name, "kind": "flood", "severity": "high", "area": circle(center, radius_km), "zones_km": [25]})
    assert response.status_code == 202, response.get_json()
    crisis = response.get_json()
    return crisis["id"], crisis["latest_run"]["job_id"]


def ran_by(found: dict) -> set[str]:
    return {worker.split("@")[0] for _, _, worker, _ in found.values()}


# ---------------------------------------------------------------------------------------------- the tests

def test_two_workers_share_imports_runs_rosters_exports_and_campaigns_and_do_each_job_once(
        api, workers, stack, db, make_user):
    client = api.test_client()
    _, desk = make_user("desk")
    _, coordinator = make_user("coordinator")
    done: dict[str, tuple] = {}

    # Imports: six files queued at once, each message delivered twice.
    imports = []
    for index in range(FILES):
        response = client.post("/api/v1/imports", headers=desk, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(nationals_file(index)), f"agency-{index}.csv")})
        assert response.status_code == 202, response.get_json()
        imports.append(response.get_json()["job_id"])
    deliver_again(api, imports)
    done.update(found := settled(imports))
    assert all(result["created"] == ROWS_PER_FILE and result["rejected"] == 0 for _, _, _, result in found.values())
    assert scalar("SELECT count(*) FROM nationals") == FILES * ROWS_PER_FILE

    # A second delivery while the first still runs: the run waits on a lock held here, mid-way; both copies
    # sent meanwhile land in the other worker, which leaves the job to its runner.
    blocker = owner_connection()
    blocker.autocommit = False
    blocker.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")
    try:
        dubai, dubai_job = declare(client, coordinator, "Dubai flood", DUBAI, 30)
        holder = wait_for(lambda: (j := jobs([dubai_job])[dubai_job])[0] == "running" and j[2], 60, "the run")
        other = next(n for n in NAMES if not holder.startswith(f"{n}@"))
        deliver_again(api, [dubai_job])
        deliver_again(api, [dubai_job])
        wait_for(lambda: workers.log(other).count(f"job {dubai_job} {SKIPPED}") == 2, 60,
                 "the other worker to pass both copies")
        assert jobs([dubai_job])[dubai_job][:3] == ("running", 1, holder)  # not failed, not started again
    finally:
        blocker.rollback()
        blocker.close()

    # The other exposure runs, queued at once, each delivered twice.
    crises = {"Dubai flood": (dubai, dubai_job, 100)}
    for name, center, radius, expected in (("Abu Dhabi flood", ABU_DHABI, 30, 100), ("Doha flood", DOHA, 30, 100),
                                           ("Gulf storm", GULF, 260, 300)):
        crises[name] = (*declare(client, coordinator, name, center, radius), expected)
    runs = [job for _, job, _ in crises.values()]
    deliver_again(api, runs[1:])
    done.update(settled(runs))
    run_ids = {}
    for name, (crisis_id, job_id, expected) in crises.items():
        run_ids[name] = done[job_id][3]["run_id"]
        assert done[job_id][3]["counts"]["total"] == expected, name
        assert scalar("SELECT count(*) FROM exposures WHERE run_id = %s", run_ids[name]) == expected, name
        assert scalar("SELECT count(*) FROM exposure_runs WHERE crisis_id = %s", crisis_id) == 1, name

    # Rosters: one per crisis, queued at once, each delivered twice.
    for name, center, country in (("Dubai shelter", DUBAI, "AE"), ("Abu Dhabi shelter", ABU_DHABI, "AE"),
                                  ("Doha shelter", DOHA, "QA")):
        lon, lat = destination(center[1], center[0], 200, 3000)
        response = client.post("/api/v1/assembly-points", headers=coordinator, json={
            "name": name, "kind": "shelter", "capacity": 200, "country": country,
            "location": {"lat": lat, "lon": lon}})
        assert response.status_code == 201, response.get_json()
    rosters = {}
    for name, (crisis_id, _, expected) in crises.items():
        response = client.post(f"/api/v1/crises/{crisis_id}/rosters", headers=coordinator,
                               json={"vehicle_capacity": 40, "max_distance_km": 100})
        assert response.status_code == 202, response.get_json()
        rosters[name] = (response.get_json()["id"], response.get_json()["job_id"], expected)
    deliver_again(api, [job for _, job, _ in rosters.values()])
    done.update(settled([job for _, job, _ in rosters.values()]))
    for name, (roster_id, _, expected) in rosters.items():
        assert scalar("SELECT count(*) FROM roster_entries WHERE roster_id = %s", roster_id) == expected, name
        assert scalar("SELECT count(DISTINCT national_id) FROM roster_entries WHERE roster_id = %s",
                      roster_id) == expected, name
        assert scalar("SELECT count(*) FROM roster_points WHERE roster_id = %s", roster_id) >= 1, name

    # Exports (CSV and HXL of every roster) and two campaigns, queued at once, each delivered twice.
    exports = {}
    for name, (roster_id, _, expected) in rosters.items():
        for fmt in ("csv", "hxl"):
            response = client.get(f"/api/v1/rosters/{roster_id}/export", headers=coordinator,
                                  query_string={"format": fmt, "purpose": "bus manifests"})
            assert response.status_code == 202, response.get_data(as_text=True)[:300]
            exports[response.get_json()["job_id"]] = (fmt, expected)
    campaigns = {}
    for name in ("Abu Dhabi flood", "Doha flood"):
        response = client.post(f"/api/v1/crises/{crises[name][0]}/messages", headers=coordinator,
                               json={"channels": ["sms", "email"], "template": TEMPLATE})
        assert response.status_code == 202, response.get_json()
        campaigns[response.get_json()["job_id"]] = response.get_json()["id"]
    deliver_again(api, [*exports, *campaigns])
    done.update(settled([*exports, *campaigns]))

    directory = Path(DATA_DIR) / "exports"
    assert not list(directory.glob("*.part"))  # no attempt left a file behind
    for job_id, (fmt, expected) in exports.items():
        assert len(list(directory.glob(f"{job_id}*"))) == 1  # one file per job
        download = client.get(done[job_id][3]["download_url"], headers=coordinator)
        assert download.status_code == 200
        lines = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
        assert len(lines) == expected + (2 if fmt == "hxl" else 1)  # the header (and the hashtag row)
        assert len({line[0] for line in lines}) == len(lines)  # nobody twice
    contacts = {"Abu Dhabi flood": 10, "Doha flood": 10}  # every tenth national has a phone and an email
    sms = stack.wait_for_sms(sum(contacts.values()), timeout=60)
    mails = stack.wait_for_email(sum(contacts.values()), timeout=60)
    for job_id, campaign_id in campaigns.items():
        assert scalar("SELECT status FROM campaigns WHERE id = %s", campaign_id) == "completed"
        assert scalar("SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s", campaign_id) == 200
        assert scalar("SELECT max(attempts) FROM campaign_recipients WHERE campaign_id = %s", campaign_id) == 1
        assert scalar("SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s AND possible_duplicate",
                      campaign_id) == 0

    # Every job ran once, in one attempt, and both workers took a share.
    assert len(done) == FILES + len(crises) + len(rosters) + len(exports) + len(campaigns)
    assert {(status, attempts) for status, attempts, _, _ in done.values()} == {("succeeded", 1)}
    assert ran_by(done) == set(NAMES)

    # Every message once more, after the work is done: nothing changes.
    deliver_again(api, list(done))
    wait_for(workers.idle, 120, "the re-deliveries to be taken")
    assert jobs(list(done)) == done
    assert scalar("SELECT count(*) FROM nationals") == FILES * ROWS_PER_FILE
    assert scalar("SELECT count(*) FROM exposures") == sum(expected for _, _, expected in crises.values())
    assert scalar("SELECT count(*) FROM roster_entries") == sum(expected for _, _, expected in rosters.values())
    assert sorted(p.name for p in directory.glob("*") if p.name.split(".")[0] in exports) == \
        sorted(f"{job_id}.bin" for job_id in exports)
    assert len(stack.wait_for_sms(0)) == len(sms) and len({to for _, to, _ in sms}) == len(sms)
    assert len(stack.wait_for_email(0)) == len(mails) and len({m["To"] for m in mails}) == len(mails)


def test_a_job_whose_worker_died_is_taken_up_by_the_other_worker_at_the_next_beat(api, workers, db, make_user):
    client = api.test_client()
    _, desk = make_user("desk")
    _, coordinator = make_user("coordinator")
    response = client.post("/api/v1/imports", headers=desk, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(nationals_file(0)), "agency.csv")})
    assert settled([response.get_json()["job_id"]])

    blocker = owner_connection()
    blocker.autocommit = False
    blocker.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")  # the run will wait here, mid-way
    try:
        crisis_id, job_id = declare(client, coordinator, "Dubai flood", DUBAI, 30)
        holder = wait_for(lambda: (j := jobs([job_id])[job_id])[0] == "running" and j[2], 60, "the run")
        victim = holder.split("@")[0]
        survivor = next(n for n in NAMES if n != victim)
        os.kill(workers.pid(victim), signal.SIGKILL)
        workers.processes[victim].wait(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()

    # The beat's recovery task (sent here as the beat sends it, each tick) finds the run nobody holds and sends it
    # again; Redis would re-deliver it only after the visibility timeout (an hour).
    celery = api.extensions["celery"]

    def recovered():
        if jobs([job_id])[job_id][0] == "running" and jobs([job_id])[job_id][1] == 1:
            celery.send_task("jobs.recover_orphaned")
            time.sleep(0.5)
            return False
        return True

    wait_for(recovered, 60, "the recovery to send the run again")
    status, attempts, worker, result = settled([job_id])[job_id]
    assert (status, attempts, worker.split("@")[0]) == ("succeeded", 2, survivor)
    assert scalar("SELECT count(*) FROM exposures WHERE run_id = %s", result["run_id"]) == result["counts"]["total"]
    assert result["counts"]["total"] == ROWS_PER_FILE // 3 + 1  # the Dubai third of the file, once
    assert scalar("SELECT count(*) FROM exposure_runs WHERE crisis_id = %s", crisis_id) == 1


def test_compose_scales_the_worker_and_runs_one_beat():
    """`docker compose up --scale worker=N`: a worker without a fixed name or host port and without the beat
    inside; the beat alone, once."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"][:2] == ["registry", "worker"] and "--no-beat" in worker["command"]
    beats = [name for name, service in services.items()
             if "beat" in service.get("command", []) or "--beat" in service.get("command", [])
             or "-B" in service.get("command", [])]
    assert beats == ["beat"] and services["beat"]["command"] == ["registry", "beat"]
    assert "deploy" not in services["beat"] and "ports" not in services["beat"]
