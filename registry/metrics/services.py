"""What ``/metrics`` says: this API's own request counters and latencies (``registry.web.observe``), and,
read at scrape time, the jobs and the queues every process shares.

- ``sagip_jobs{kind,status}``: jobs in the database, one ``GROUP BY`` over the jobs table;
- ``sagip_job_duration_seconds{kind,status}``: a histogram of the run time (started → finished) of every
  finished job in the database (exposure runs are jobs of kind ``exposure``), from the same statement; jobs
  are never deleted, so its counts only grow, as a histogram's must;
- ``sagip_job_oldest_queued_seconds{kind}``: how long the oldest queued job of a kind has waited;
- ``sagip_queue_length{queue}``: tasks waiting in each Celery queue on Redis (``LLEN`` of the queue's lists,
  one per priority step), and ``sagip_queue_unacked``: tasks a worker has taken and not yet finished;
- ``sagip_scrape_source_up{source}``: 0 when the database or the broker could not be read (their metrics are
  then missing, the request counters are still there).

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn with several processes), the request metrics are the sum
over every process of the server, read from that folder; otherwise this process's own.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import redis
from flask import current_app
from kombu.transport.redis import Channel
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from registry.extensions import db

log = logging.getLogger(__name__)

JOB_DURATION_BUCKETS_S = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
_RUN = "finished_at - started_at"
# One pass over the jobs table, grouped by kind and status: the counts, the finished jobs' run times as
# cumulative bucket counts ("le": a run of exactly 1 s is in the 1 s bucket) and their sum, the oldest job.
# Intervals are compared as intervals (no per-row EXTRACT, which is numeric), and every aggregate has a
# combine function, so PostgreSQL may share the scan between parallel workers as it does for the bare
# GROUP BY (bench/metrics.py prints both). The bounds are this module's constants, not input.
_JOBS = text(
    "SELECT kind, status, count(*) AS jobs, "
    f"count({_RUN}) AS finished, coalesce(date_part('epoch', sum({_RUN})), 0) AS seconds, "
    + "".join(f"count(*) FILTER (WHERE {_RUN} <= interval '{bound!r} s') AS le_{index}, "
              for index, bound in enumerate(JOB_DURATION_BUCKETS_S))
    + "date_part('epoch', now() - min(created_at)) AS oldest_s "
    "FROM jobs GROUP BY kind, status ORDER BY kind, status")
FINISHED = ("succeeded", "failed")


@dataclass
class _Composite:
    """Collectors read one after the other (what ``generate_latest`` needs of a registry)."""

    sources: tuple

    def collect(self):
        for source in self.sources:
            yield from source.collect()


def exposition() -> tuple[bytes, str]:
    """(the metrics in the text exposition format, its content type)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    requests = multiprocess.MultiProcessCollector(None, directory) if directory else REGISTRY
    return generate_latest(_Composite((requests, SharedState()))), CONTENT_TYPE_LATEST


class SharedState:
    """The jobs (database) and queues (broker) every process shares, read when collected."""

    def collect(self):
        up = GaugeMetricFamily("sagip_scrape_source_up", "1 when the source could be read for this scrape",
                               labels=["source"])
        try:
            rows = db.session.execute(_JOBS).all()
        except SQLAlchemyError as exc:
            db.session.rollback()
            log.warning("metrics: the jobs could not be read: %s", type(exc).__name__)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield from _job_families(rows)
        try:
            waiting, unacked = _queue_lengths()
        except redis.RedisError as exc:
            log.warning("metrics: the broker could not be read: %s", type(exc).__name__)
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            queues = GaugeMetricFamily("sagip_queue_length", "Celery tasks waiting in the queue (Redis LLEN)",
                                       labels=["queue"])
            for name, count in waiting.items():
                queues.add_metric([name], count)
            yield queues
            yield GaugeMetricFamily("sagip_queue_unacked", "Celery tasks taken by a worker and not yet "
                                                           "acknowledged (running or reserved), every queue",
                                    value=unacked)
        yield up


def _job_families(rows):
    jobs = GaugeMetricFamily("sagip_jobs", "Jobs in the database by kind and status", labels=["kind", "status"])
    durations = HistogramMetricFamily("sagip_job_duration_seconds", "Run time (started to finished) of the "
                                      "finished jobs in the database, by kind and status",
                                      labels=["kind", "status"])
    oldest = GaugeMetricFamily("sagip_job_oldest_queued_seconds", "How long the oldest queued job of a kind has "
                                                                  "waited", labels=["kind"])
    for row in rows:
        jobs.add_metric([row.kind, row.status], row.jobs)
        if row.status in FINISHED:
            buckets = [(repr(bound), getattr(row, f"le_{index}"))
                       for index, bound in enumerate(JOB_DURATION_BUCKETS_S)]
            durations.add_metric([row.kind, row.status], buckets + [("+Inf", row.finished)],
                                 sum_value=float(row.seconds))
        if row.status == "queued":
            oldest.add_metric([row.kind], float(row.oldest_s))
    return jobs, durations, oldest


def _queue_lengths() -> tuple[dict[str, int], int]:
    """({queue: tasks waiting}, tasks unacknowledged), from the broker's Redis, in one round trip.

    Kombu keeps a queue as one list per priority step (the queue's name, then name + separator + step) and
    the tasks workers hold in one hash: their names come from kombu itself."""
    celery = current_app.extensions["celery"]
    names = [celery.conf.task_default_queue]
    names += [queue.name for queue in celery.conf.task_queues or () if queue.name not in names]
    client = _client()
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            for step in Channel.priority_steps:
                pipe.llen(f"{name}{Channel.sep}{step}" if step else name)
        pipe.hlen(Channel.unacked_key)
        counts = pipe.execute()
    steps = len(Channel.priority_steps)
    waiting = {name: sum(counts[i * steps:(i + 1) * steps]) for i, name in enumerate(names)}
    return waiting, counts[-1]


def _client() -> redis.Redis:
    client = current_app.extensions.get("sagip_metrics_redis")
    if client is None:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
        current_app.extensions["sagip_metrics_redis"] = client
    return client
