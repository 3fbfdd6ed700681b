"""Gunicorn settings used by ``registry serve`` and docker-compose."""
import glob
import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("REGISTRY_BIND", "127.0.0.1:8000")
# One process per core with threads beat more processes on a 2-core machine (bench/api.py).
workers = int(os.environ.get("REGISTRY_WEB_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("REGISTRY_WEB_THREADS", 4))
timeout = 60
# The application logs each request itself, with its route (never its path or query) and request id
# (registry/web/observe.py): gunicorn's own access log is off. Turned on (--access-logfile), it writes
# %(U)s, the path without its query string: personal data never reaches the logs ...
accesslog = None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# ... and a check-in link's token as /checkin/<token> (registry/web/access_log.py); its error log is JSON where
# the service's logs are (REGISTRY_LOG_FORMAT).
logger_class = "registry.web.gunicorn_logging.RedactingLogger"
# Request heads are bounded before the application sees them: gunicorn answers 414 or 431 itself (a 4 KB
# request line, 100 header fields, 8 KB per field: far above what a client of this API sends).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# Several processes: /metrics sums their request counters through prometheus_client's multiprocess mode.
# Its folder must be set before a worker imports prometheus_client, and start empty.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_own_metrics_dir = []


def on_starting(server):
    directory = os.environ.get(METRICS_DIR)
    if directory:
        for stale in glob.glob(os.path.join(directory, "*.db")):  # a folder given: last run's counts go
            os.remove(stale)
    elif workers > 1:
        directory = tempfile.mkdtemp(prefix="sagip-metrics-")
        os.environ[METRICS_DIR] = directory
        _own_metrics_dir.append(directory)


def child_exit(server, worker):
    if os.environ.get(METRICS_DIR):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    for directory in _own_metrics_dir:
        shutil.rmtree(directory, ignore_errors=True)
