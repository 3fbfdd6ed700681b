"""A campaign through Kannel + fakesmsc while its worker is SIGKILLed: nobody unsent, duplicates counted.

    python bench/campaign_kills.py [--recipients 20000] [--kills 5] [--rate 1000] [--senders 4] \
        [--port-base 14300] [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_campaigns] \
        [--redis-url redis://127.0.0.1:6379/5]

1. Creates the database if missing, migrates it, empties the campaign tables; purges the Redis queue.
2. Starts the gateway stack (``registry.gateways.local``: Kannel bearerbox + smsbox + fakesmsc) and a
   sink for Kannel's delivery reports (the hook's answers are not what is measured here).
3. Seeds --recipients nationals exposed in one crisis (plain SQL), one phone each, and asks for one SMS
   campaign to all of them (``registry.campaigns.services``: the campaign and its job, dispatched by the
   outbox after the commit).
4. Starts a real worker (``celery -A tasks worker --pool solo``) and the beat (whose ``campaigns.resume``
   re-dispatches a campaign whose heartbeat went quiet); each time the recipients handed to Kannel pass
   the next of --kills even steps, SIGKILLs the worker and starts a new one at once.
5. When the campaign has finished: the recipients by state, the rows flagged ``possible_duplicate``, what
   fakesmsc received (messages, distinct numbers, numbers received twice, numbers never received), the
   job's attempts, and messages per second.

Expected: 0 unsent; numbers received twice <= possible_duplicates <= kills x REGISTRY_CAMPAIGN_SENDERS
(at most one message per sender thread is in the gateway's hands when its worker dies).
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.api import ensure_database, migrate, plain_url  # noqa: E402
from bench.zipbomb import Started  # noqa: E402

TEMPLATE = "{given_name}, are you safe after the {crisis_name}? Reply 1 SAFE or 2 HELP. Hotline {hotline}"
GIVE_UP_S = 1800
CRISIS, VERSION_RUN = uuid.UUID(int=1), uuid.UUID(int=2)


def seed(url: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE campaign_recipients, campaigns, checkin_links, exposures, exposure_runs, "
                     "crisis_area_parts, crisis_versions, crises, outbox, jobs CASCADE")
        conn.execute("DELETE FROM nationals WHERE family_name = 'Benchcampaign'")
        conn.execute("INSERT INTO crises (id, name, kind, severity) VALUES (%s, 'Bench flood', 'flood', 'high')",
                     (CRISIS,))
        conn.execute("INSERT INTO crisis_versions (crisis_id, version, geom, vertices) VALUES (%s, 1, ST_Multi("
                     "ST_Buffer(ST_SetSRID(ST_MakePoint(55.3, 25.2), 4326), 1)), 5)", (CRISIS,))
        conn.execute("INSERT INTO exposure_runs (id, crisis_id, version, status) VALUES (%s, %s, 1, 'succeeded')",
                     (VERSION_RUN, CRISIS))
        conn.execute("""
INSERT INTO nationals (id, household_id, family_name, given_names, sex, date_of_birth, nationality,
                       jurisdiction_country, phones, languages)
SELECT gen_random_uuid(), gen_random_uuid(), 'Benchcampaign', 'Maria', 'F', '1990-01-01', 'PH', 'AE',
       ARRAY['+97155' || lpad(i::text, 7, '0')], ARRAY['en']
FROM generate_series(1, %s) i""", (count,))
        conn.execute("INSERT INTO exposures (run_id, national_id, zone, distance_km, certainty) SELECT %s, id, "
                     "'inside', 0, 'high' FROM nationals WHERE family_name = 'Benchcampaign'", (VERSION_RUN,))


def ask(app) -> tuple[str, str]:
    """The campaign, asked for as the API does (services), committed: its outbox message goes to the worker."""
    from registry.auth import scope
    from registry.auth.services import create_user
    from registry.campaigns import services
    from registry.extensions import db
    with app.app_context():
        scope.use_everything()
        user = create_user(f"bench-{uuid.uuid4().hex[:6]}", "coordinator", [])
        crisis = services.lock_crisis(CRISIS)
        request = services.check_request(crisis, {"channels": ["sms"], "template": TEMPLATE, "audience": {}})
        campaign = services.create(crisis, request, user)
        ids = (str(campaign.id), str(campaign.job_id))
        db.session.commit()
    return ids


def handed_over(conn, campaign_id: str) -> int:
    return conn.execute("SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s AND state IN "
                        "('submitting', 'sent', 'delivered', 'failed')", (campaign_id,)).fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1000.0, help="REGISTRY_SMS_RATE")
    parser.add_argument("--senders", type=int, default=4, help="REGISTRY_CAMPAIGN_SENDERS")
    parser.add_argument("--port-base", type=int, default=14300, help="the gateway stack's ports (6 from here)")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_campaigns")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    url = plain_url(args.database_url)
    if "bench" not in url.rsplit("/", 1)[-1]:
        raise SystemExit("refusing a database whose name lacks 'bench'")
    data_dir = tempfile.mkdtemp(prefix="sagip-bench-campaign-")
    sink_port = args.port_base + 9

    from registry.gateways.local import GatewayStack
    stack = GatewayStack(args.port_base, hook_base=f"http://127.0.0.1:{sink_port}",
                         workdir=os.path.join(data_dir, "gateways"), smtp=False)
    stack.start()
    sink = subprocess.Popen([sys.executable, "-m", "http.server", str(sink_port), "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=data_dir)
    os.environ.update(DATABASE_URL=url, REDIS_URL=args.redis_url, REGISTRY_DATA_DIR=data_dir,
                      REGISTRY_SMS_URL=stack.sms_url, REGISTRY_SMS_HOOK_SECRET=stack.hook_secret,
                      REGISTRY_SMS_CALLBACK_URL=f"http://127.0.0.1:{sink_port}", REGISTRY_SMS_RATE=str(args.rate),
                      REGISTRY_CAMPAIGN_SENDERS=str(args.senders), REGISTRY_HOTLINE="(02) 8834-4000")
    from registry import config, create_app
    ensure_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url(url)})
    migrate(app)
    app.extensions["celery"].control.purge()
    seed(url, args.recipients)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs); "
          f"{args.recipients:,} recipients, rate {args.rate:g}/s, {args.senders} senders, {args.kills} kills")

    worker_argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "solo", "--loglevel",
                   "WARNING", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    beat = Started("beat", [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "WARNING",
                            "--schedule", os.path.join(data_dir, "beat-schedule")], dict(os.environ))
    worker = Started("worker", worker_argv, dict(os.environ))
    campaign_id, job_id = ask(app)
    started = time.perf_counter()
    kills = []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            steps = [args.recipients * (k + 1) // (args.kills + 1) for k in range(args.kills)]
            while time.perf_counter() - started < GIVE_UP_S:
                status = conn.execute("SELECT status FROM campaigns WHERE id = %s", (campaign_id,)).fetchone()[0]
                if status not in ("queued", "sending"):
                    break
                if steps and handed_over(conn, campaign_id) >= steps[0]:
                    steps.pop(0)
                    os.killpg(worker.proc.pid, signal.SIGKILL)
                    worker.proc.wait()
                    kills.append(round(time.perf_counter() - started, 1))
                    print(f"  SIGKILL {len(kills)} at {kills[-1]} s, {handed_over(conn, campaign_id):,} handed over",
                          flush=True)
                    worker = Started("worker", worker_argv, dict(os.environ))
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            states = dict(conn.execute("SELECT state, count(*) FROM campaign_recipients WHERE campaign_id = %s "
                                       "GROUP BY 1", (campaign_id,)).fetchall())
            flagged = conn.execute("SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s AND "
                                   "possible_duplicate", (campaign_id,)).fetchone()[0]
            job = conn.execute("SELECT status, attempts, error FROM jobs WHERE id = (SELECT job_id FROM campaigns "
                               "WHERE id = %s)", (campaign_id,)).fetchone()
            status = conn.execute("SELECT status FROM campaigns WHERE id = %s", (campaign_id,)).fetchone()[0]
        received = stack.received_sms(timeout=3)
    finally:
        worker.stop()
        beat.stop()
        sink.kill()
        stack.stop()
    numbers = collections.Counter(to for _, to, _ in received)
    expected = {f"+97155{i:07d}" for i in range(1, args.recipients + 1)}
    twice = sum(1 for n in numbers.values() if n > 1)
    unsent = len(expected - set(numbers))
    print(f"campaign {status} in {elapsed:.1f} s ({args.recipients / elapsed:.0f} messages/s with the kills' "
          f"pauses); job {job[0]}, attempts {job[1]}{', ' + str(job[2]) if job[2] else ''}")
    print(f"recipients by state: {states}; possible_duplicate flagged: {flagged}")
    print(f"fakesmsc received {len(received):,} messages to {len(numbers):,} numbers: {twice} received twice, "
          f"{unsent} never received; {len(kills)} kills at {kills} s")
    ok = (status == "completed" and unsent == 0 and twice <= flagged <= len(kills) * args.senders)
    print("as expected" if ok else "NOT as expected")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
