"""Reaching the exposed (SPEC §10) through real gateways: Kannel + fakesmsc, beside Kannel's own ceiling.

    python bench/outreach.py ceiling  [--messages 20000] [--clients 1,4,8] [--replies 10000] [--port-base 15000]
    python bench/outreach.py campaign [--nationals 100000] [--port-base 15000] [--port 8790] [--sms-rate 1000000]
    python bench/outreach.py replies  [--replies 10000] ...
    python bench/outreach.py fault    [--recipients 20000] [--kills 5] ...
    python bench/outreach.py all      (ceiling, campaign, replies, fault; one stack, one database)
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_outreach] [--redis-url redis://127.0.0.1:6379/7]

Every part starts its own gateway stack (registry/gateways/local.py: Kannel bearerbox + smsbox, the fake SMSC
with one fakesmsc client, a second fakesmsc fed on its standard input for replies) on ``--port-base`` ..
+5, with Kannel logging at warning level.

**ceiling** — Kannel's own ceiling on this machine, no Sagip code involved:

* sending: ``--messages`` campaign-shaped messages (one GSM-7 part, a check-in link, ``from``,
  ``charset=UTF-8``, ``coding=0``, distinct recipients) sent straight to sendsms by 1, 4 and 8 concurrent
  HTTP clients (threads, one keep-alive connection each: the campaign sender's shape, 4 threads a worker),
  timed until fakesmsc has received all of them; once without delivery reports and once with
  ``dlr-mask`` 19 and a ``dlr-url`` (as the campaign sender asks) answered by a bare HTTP sink.
* replies: ``--replies`` replies injected through fakesmsc → Kannel → ``post-url`` answered by the same bare
  HTTP sink (a separate process: Python's http.server, keep-alive, an empty 200), timed until the sink has
  counted all of them.

**campaign**, **replies**, **fault** — the service itself (they need the campaigns and replies work:
``POST /api/v1/crises/{id}/messages`` → 202 ``{"id", "job_id"}``, ``GET /api/v1/messages/{id}`` counts,
``/api/v1/hooks/sms``). The database (its name must contain "bench") is created, migrated and seeded once
by COPY: ``--nationals`` nationals with one distinct phone each, exposed in one active crisis (the
campaign's), and ``--recipients`` more exposed in a second crisis (the fault test's). Then gunicorn
(``registry/gunicorn_conf.py``) serves the API, the hook and the delivery reports, and a Celery worker
(``celery -A tasks worker --beat``) sends, both with the stack's REGISTRY_SMS_URL, REGISTRY_SMS_HOOK_SECRET
and ``REGISTRY_SMS_RATE=--sms-rate`` (unthrottled by default: the figure is the sending path's own).

* campaign: ``POST /crises/{id}/messages`` (SMS, one GSM-7 template with ``{given_name}`` and
  ``{checkin_link}``), timed until ``GET /messages/{id}`` says completed and fakesmsc has received every
  message; messages/s beside the ceiling at 4 clients (target ≥ 0.8×).
* replies: ``--replies`` replies from distinct exposed nationals' phones (keywords 1/SAFE/LIGTAS/2/TULONG/3,
  some with a note) injected through fakesmsc, timed until ``sms_replies`` holds all of them; every one
  must be ``applied`` (matched to its national, status recorded).
* fault: a campaign to the ``--recipients`` of the second crisis; the worker (its whole process group: the
  main process and its pool children) SIGKILLed ``--kills`` times while it sends, restarted each time; then
  recipients unsent (the service's open counts, and phones fakesmsc never got: both must be 0), duplicates
  counted from fakesmsc's received messages (messages per recipient > 1) beside the service's own
  ``possible_duplicates``.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from registry.gateways.local import GatewayStack  # noqa: E402

# A campaign's message as the template below renders it (one GSM-7 part, a 22-character token).
TEMPLATE = ("SAGIP: {given_name}, ligtas ka ba? Reply 1 SAFE, 2 HELP, 3 EVACUATE. Or check in: {checkin_link}")
SAMPLE_TEXT = ("SAGIP: Maria Luisa, ligtas ka ba? Reply 1 SAFE, 2 HELP, 3 EVACUATE. Or check in: "
               "http://127.0.0.1:8790/checkin/AbCdEfGhIjKlMnOpQrStUv")
DLR_MASK = 19  # 1 delivered | 2 failed | 16 rejected: the campaign sender's mask
REPLY_TEXTS = ("1", "SAFE", "ligtas", "2", "TULONG need water", "3 evacuate us", "Safe po kami", "1 ok")
SEED_TAG = "bench outreach"
FAULT_TAG = "bench outreach fault"
PHONE_PREFIX = "+63917"


# ------------------------------------------------------------------------------------------------ the sink
class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Kannel's HTTP client uses it

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        counter = self.server.counters[0 if self.path.startswith("/dlr") else 1]
        with counter.get_lock():
            counter.value += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args):  # no access log
        pass


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # Kannel opens many connections at once: a backlog of 5 drops some (1 s retries)


def _serve_sink(port: int, counters) -> None:
    server = _SinkServer(("127.0.0.1", port), _Sink)
    server.counters = counters
    server.serve_forever()


class Sink:
    """A bare HTTP endpoint in its own process: counts delivery reports (/dlr…) and hook posts (the rest)."""

    def __init__(self, port: int):
        self.dlrs, self.hooks = mp.Value("q", 0), mp.Value("q", 0)
        self.process = mp.get_context("fork").Process(target=_serve_sink, args=(port, (self.dlrs, self.hooks)),
                                                      daemon=True)
        self.process.start()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.reset()

    def reset(self) -> None:
        for value in (self.dlrs, self.hooks):
            with value.get_lock():
                value.value = 0

    def wait(self, value, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while value.value < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"the sink counted {value.value} of {count} after {timeout} s")
            time.sleep(0.005)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


# ------------------------------------------------------------------------------------------------ ceiling
def send_straight(stack: GatewayStack, messages: list[tuple[str, str]], clients: int,
                  dlr_url: str | None) -> float:
    """Seconds from the first sendsms request until fakesmsc has received every message."""
    parts = urllib.parse.urlsplit(stack.sms_url)
    base = parts.path + "?" + parts.query
    queue = collections.deque(messages)
    lock = threading.Lock()
    errors: list[str] = []

    def client():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while True:
            with lock:
                if not queue:
                    break
                to, text = queue.popleft()
            fields = {"to": to, "text": text, "from": stack.sender, "charset": "UTF-8", "coding": "0"}
            if dlr_url:
                fields.update({"dlr-mask": str(DLR_MASK), "dlr-url": dlr_url})
            conn.request("GET", f"{base}&{urllib.parse.urlencode(fields)}", headers={"Connection": "keep-alive"})
            answer = conn.getresponse()
            body = answer.read()
            if answer.status != 202:
                errors.append(f"{answer.status} {body[:80]!r}")
                break
        conn.close()

    stack.clear()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"sendsms refused: {errors[:3]}")
    stack.wait_for_sms(len(messages), timeout=600)
    return time.perf_counter() - started


def ceiling(args, stack: GatewayStack | None = None, sink: Sink | None = None) -> dict:
    own = stack is None
    sink = sink or Sink(args.port_base + 9)
    if own:
        stack = GatewayStack(args.port_base, hook_base=sink.url).start()
    figures = {}
    try:
        messages = [(f"{PHONE_PREFIX}{i:07d}", SAMPLE_TEXT) for i in range(args.messages)]
        send_straight(stack, messages[:min(500, len(messages))], 4, None)  # warm-up
        print(f"Kannel's sendsms ceiling: {args.messages:,} messages, sendsms → fakesmsc received all "
              f"(median of {args.runs})", flush=True)
        for dlr in (False, True):
            for clients in [int(c) for c in args.clients.split(",")]:
                seconds, dlr_seconds = [], []
                for _ in range(args.runs):
                    sink.reset()
                    dlr_url = f"{sink.url}/dlr?id={uuid.uuid4().hex}&type=%d" if dlr else None
                    seconds.append(send_straight(stack, messages, clients, dlr_url))
                    if dlr:
                        sink.wait(sink.dlrs, len(messages), timeout=600)
                rate = args.messages / statistics.median(seconds)
                figures[(clients, dlr)] = rate
                print(f"  {clients} client{'s' if clients > 1 else ' '} {'with' if dlr else 'no  '} DLRs: "
                      f"{rate:8,.0f} messages/s  ({statistics.median(seconds):.2f} s)", flush=True)
        replies = [(f"{PHONE_PREFIX}{i:07d}", "SAGIP", random.choice(REPLY_TEXTS)) for i in range(args.replies)]
        rates = []
        for _ in range(args.runs):
            sink.reset()
            started = time.perf_counter()
            stack.inject_many(replies)
            sink.wait(sink.hooks, len(replies), timeout=600)
            rates.append(len(replies) / (time.perf_counter() - started))
        figures["replies"] = statistics.median(rates)
        print(f"Kannel's replies ceiling: {args.replies:,} replies fakesmsc → Kannel → a bare HTTP endpoint: "
              f"{figures['replies']:,.0f} replies/s (median of {args.runs})", flush=True)
    finally:
        if own:
            stack.stop()
            sink.stop()
    return figures


# ------------------------------------------------------------------------------------------ the service
def seed(url: str, nationals: int, fault_recipients: int, label_points: dict) -> tuple[str, str]:
    """(campaign crisis id, fault crisis id): nationals with one distinct phone each, exposed by COPY."""
    import psycopg

    from bench.exposure import CITIES, random_place
    from bench.roster import seed_crisis
    given = ["Maria Luisa", "José", "Juan Carlos", "Ana", "Rosario", "Mark Anthony", "Liza", "Noel"]
    with psycopg.connect(url) as conn:
        layout = dict(conn.execute("SELECT search_name, count(*) FROM nationals WHERE search_name IN (%s, %s) "
                                   "GROUP BY search_name", (SEED_TAG, FAULT_TAG)).fetchall())
        if layout and layout != {SEED_TAG: nationals, FAULT_TAG: fault_recipients}:
            # Phones are numbered by position (the fault's after the campaign's): another size would share
            # numbers, and a national in two active crises is not matched by a reply. Start again.
            print(f"seed: the database holds another layout ({layout}): emptied")
            conn.execute("TRUNCATE nationals, crises, sms_replies CASCADE")
            conn.commit()
        for tag, count, offset in ((SEED_TAG, nationals, 0), (FAULT_TAG, fault_recipients, nationals)):
            have = conn.execute("SELECT count(*) FROM nationals WHERE search_name = %s", (tag,)).fetchone()[0]
            if have >= count:
                print(f"seed: {have:,} nationals '{tag}' already there")
                continue
            started = time.monotonic()
            rng = random.Random(offset + have)
            weights = [c[4] for c in CITIES]
            now = datetime.now(timezone.utc)
            with conn.cursor().copy(
                    "COPY nationals (id, family_name, given_names, sex, date_of_birth, nationality, household_id, "
                    "status, source, search_name, jurisdiction_country, location, location_source, "
                    "location_precision_m, location_reported_at, phones, languages) FROM STDIN") as copy:
                for i in range(offset + have, offset + count):
                    country, point, source, precision = random_place(rng, weights, label_points)
                    copy.write_row((uuid.uuid4(), "Bench", given[i % len(given)], "F" if i % 2 else "M",
                                    date(1970, 1, 1) + timedelta(days=i % 15000), "PH", uuid.uuid4(), "abroad",
                                    "bulk_import", tag, country, point, source, precision,
                                    now - timedelta(days=i % 60), [f"{PHONE_PREFIX}{i:07d}"], ["fil", "en"]))
            conn.commit()
            print(f"seed: {count - have:,} nationals '{tag}' added in {time.monotonic() - started:.0f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE nationals")
    return (seed_crisis(url, f"{SEED_TAG} {nationals}", nationals, tag=SEED_TAG),
            seed_crisis(url, f"{FAULT_TAG} {fault_recipients}", fault_recipients, tag=FAULT_TAG))


class Service:
    """gunicorn serving the API, the hook and the delivery reports, and a Celery worker, with the stack's
    environment; the worker can be SIGKILLed (its whole process group) and restarted."""

    def __init__(self, args, stack: GatewayStack, url: str):
        self.port = args.port
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **stack.environment(), "DATABASE_URL": url, "REDIS_URL": args.redis_url,
                    "REGISTRY_SMS_RATE": str(args.sms_rate), "REGISTRY_PUBLIC_URL": self.base,
                    "REGISTRY_SMS_CALLBACK_URL": self.base, "REGISTRY_BIND": f"127.0.0.1:{self.port}"}
        self.folder = Path(tempfile.mkdtemp(prefix="sagip-bench-outreach-"))
        self.web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "registry/gunicorn_conf.py"),
                                     "registry.wsgi:app"], cwd=ROOT, env=self.env,
                                    stdout=subprocess.DEVNULL, stderr=open(self.folder / "web.log", "wb"))
        self.worker = None
        self.start_worker()
        deadline = time.monotonic() + 60
        while not self._healthy():
            if time.monotonic() > deadline or self.web.poll() is not None:
                raise SystemExit(f"gunicorn did not start (see {self.folder / 'web.log'})")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "WARNING", "--concurrency", "2",
             "--beat", "--schedule", str(self.folder / "celerybeat-schedule"), "--without-heartbeat",
             "--without-mingle", "--without-gossip"], cwd=ROOT, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "worker.log", "ab"))

    def kill_worker(self) -> None:
        """SIGKILL to the worker's process group: the main process and its pool children at once."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)  # the worker and its pool children
        if self.web.poll() is None:
            self.web.terminate()
        for process in (self.worker, self.web):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def call(self, method: str, path: str, token: str, body=None) -> tuple[int, dict]:
        import json
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        conn.close()
        return answer.status, (json.loads(data) if data else {})


class Arrivals:
    """When fakesmsc received its first and its last message (the stack's ``on_sms``)."""

    def __init__(self):
        self.first = self.last = None

    def __call__(self, sms) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now

    def reset(self) -> None:
        self.first = self.last = None


ARRIVALS = Arrivals()


def run_campaign(service: Service, token: str, crisis_id: str, stack: GatewayStack, expected: int,
                 on_progress=None) -> tuple[float, dict]:
    """(seconds until completed and fakesmsc got ``expected`` messages, the final campaign)."""
    body = {"channels": ["sms"], "template": TEMPLATE, "audience": {}, "dry_run": False}
    stack.clear()
    ARRIVALS.reset()
    started = time.perf_counter()
    status, answer = service.call("POST", f"/api/v1/crises/{crisis_id}/messages?purpose=bench", token, body)
    if status != 202:
        raise SystemExit(f"POST /crises/{crisis_id}/messages: {status} {answer}")
    campaign_id = answer["id"]
    while True:
        status, campaign = service.call("GET", f"/api/v1/messages/{campaign_id}", token)
        if status != 200:
            raise SystemExit(f"GET /messages/{campaign_id}: {status} {campaign}")
        if on_progress is not None:
            on_progress(campaign)
        if campaign["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.5)
    if campaign["status"] != "completed":
        raise SystemExit(f"the campaign ended {campaign['status']}: {campaign['counts']}")
    stack.wait_for_sms(expected, timeout=600)
    return time.perf_counter() - started, campaign


def campaign_part(args, service, token, crisis_id, stack, ceiling_rate):
    seconds, campaign = run_campaign(service, token, crisis_id, stack, args.nationals)
    counts = campaign["counts"]
    window = ARRIVALS.last - ARRIVALS.first
    rate = (args.nationals - 1) / window
    print(f"campaign: {args.nationals:,} exposed → POST /crises/{{id}}/messages → completed and fakesmsc got all "
          f"in {seconds:.1f} s ({args.nationals / seconds:,.0f} messages/s end to end); sending, first to last "
          f"message at fakesmsc: {window:.1f} s, {rate:,.0f} messages/s; counts {_short(counts)}")
    if ceiling_rate:
        senders = int(os.environ.get("REGISTRY_CAMPAIGN_SENDERS", "4"))
        print(f"  beside Kannel's ceiling at {senders} clients (the campaign's senders) with DLRs "
              f"{ceiling_rate:,.0f} messages/s: {rate / ceiling_rate:.2f}x (target >= 0.8x)")


def replies_part(args, url: str, stack: GatewayStack):
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        phones = [row[0][0] for row in conn.execute(
            "SELECT n.phones FROM nationals n WHERE n.search_name = %s ORDER BY n.phones LIMIT %s",
            (SEED_TAG, args.replies))]
        conn.execute("DELETE FROM sms_replies WHERE phone = ANY(%s)", (phones,))
        before = conn.execute("SELECT count(*) FROM sms_replies").fetchone()[0]
        rng = random.Random(7)
        replies = [(phone, stack.sender, rng.choice(REPLY_TEXTS)) for phone in phones]
        started = time.perf_counter()
        stack.inject_many(replies)
        deadline = time.monotonic() + 900
        while conn.execute("SELECT count(*) FROM sms_replies").fetchone()[0] < before + len(replies):
            if time.monotonic() > deadline:
                raise SystemExit("the replies did not all arrive within 900 s")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        outcomes = dict(conn.execute("SELECT outcome, count(*) FROM sms_replies WHERE phone = ANY(%s) "
                                     "GROUP BY outcome", (phones,)).fetchall())
    print(f"replies: {len(replies):,} replies fakesmsc → Kannel → /api/v1/hooks/sms recorded in {seconds:.1f} s, "
          f"{len(replies) / seconds:,.0f} replies/s; outcomes {outcomes} "
          f"({'all matched' if outcomes.get('applied') == len(replies) else 'NOT all matched'})")


def fault_part(args, service, token, crisis_id, stack):
    thresholds = [int(args.recipients * (k + 1) / (args.kills + 1)) for k in range(args.kills)]
    kills = []

    def on_progress(campaign):
        done = len(stack.received_sms())
        if thresholds and done >= thresholds[0] and campaign["status"] == "sending":
            thresholds.pop(0)
            service.kill_worker()
            kills.append(done)
            service.start_worker()

    seconds, campaign = run_campaign(service, token, crisis_id, stack, args.recipients, on_progress)
    counts = campaign["counts"]
    received = collections.Counter(sms.receiver for sms in stack.received_sms(timeout=5))
    with_phone = {f"{PHONE_PREFIX}{i:07d}" for i in range(args.nationals, args.nationals + args.recipients)}
    never = len(with_phone - set(received))
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    unsent = sum(counts.get(state, 0) for state in ("queued", "sending", "submitting"))
    print(f"fault: {args.recipients:,} recipients, worker SIGKILLed {len(kills)} times (after "
          f"{', '.join(f'{k:,}' for k in kills)} messages received), restarted each time: {seconds:.1f} s")
    print(f"  unsent: {unsent} by the service's counts, {never} phones fakesmsc never got (target 0)")
    print(f"  duplicates: {duplicates} extra messages at fakesmsc on {sum(1 for n in received.values() if n > 1)} "
          f"phones; the service counted {counts.get('possible_duplicates')} possible duplicates "
          f"(target: at most one per kill per in-flight batch)")


def _short(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k != "by_channel" and v}


def service_parts(args, parts: list[str], ceiling_rate: float | None) -> None:
    from bench.exposure import libpq_url, prepare
    url = libpq_url(args.database_url)
    stack = GatewayStack(args.port_base, hook_base=f"http://127.0.0.1:{args.port}", on_sms=ARRIVALS).start()
    try:
        app, token, label_points = prepare(url, args.redis_url)
        with app.app_context():
            from registry.auth.services import create_user, issue_token
            from registry.extensions import db
            user = create_user(f"bench-outreach-{uuid.uuid4().hex[:6]}", "coordinator")
            token = issue_token(user, ttl_days=1)
            db.session.commit()
        campaign_crisis, fault_crisis = seed(url, args.nationals, args.recipients, label_points)
        service = Service(args, stack, url)
        try:
            if "campaign" in parts:
                campaign_part(args, service, token, campaign_crisis, stack, ceiling_rate)
            if "replies" in parts:
                replies_part(args, url, stack)
            if "fault" in parts:
                fault_part(args, service, token, fault_crisis, stack)
        finally:
            service.stop()
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("ceiling", "campaign", "replies", "fault", "all"))
    parser.add_argument("--messages", type=int, default=20_000, help="the ceiling's messages per run")
    parser.add_argument("--clients", default="1,4,8", help="the ceiling's concurrent sendsms clients")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replies", type=int, default=10_000)
    parser.add_argument("--nationals", type=int, default=100_000, help="exposed nationals the campaign reaches")
    parser.add_argument("--recipients", type=int, default=20_000, help="the fault test's campaign")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--sms-rate", type=float, default=1_000_000.0, help="REGISTRY_SMS_RATE of the service")
    parser.add_argument("--port-base", type=int, default=15000, help="the gateway stack's ports: base .. +5, "
                                                                      "the ceiling's sink +9")
    parser.add_argument("--port", type=int, default=8790, help="gunicorn's port")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_outreach")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    ceiling_rate = None
    if args.part in ("ceiling", "all"):
        figures = ceiling(args)
        # The campaign sends with REGISTRY_CAMPAIGN_SENDERS threads: compared at that many clients.
        ceiling_rate = figures.get((int(os.environ.get("REGISTRY_CAMPAIGN_SENDERS", "4")), True))
    if args.part != "ceiling":
        parts = ["campaign", "replies", "fault"] if args.part == "all" else [args.part]
        service_parts(args, parts, ceiling_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
