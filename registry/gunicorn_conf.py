"""Gunicorn settings used by ``registry serve`` and docker-compose."""
import multiprocessing
import os

bind = os.environ.get("REGISTRY_BIND", "127.0.0.1:8000")
# One process per core with threads beat more processes on a 2-core machine (bench/api.py).
workers = int(os.environ.get("REGISTRY_WEB_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("REGISTRY_WEB_THREADS", 4))
timeout = 60
accesslog = "-"
# %(U)s is the path without its query string: personal data never reaches the logs.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# ... and a check-in link's token is logged as /checkin/<token> (registry/web/access_log.py).
logger_class = "registry.web.gunicorn_logging.RedactingLogger"
# Request heads are bounded before the application sees them: gunicorn answers 414 or 431 itself (a 4 KB
# request line, 100 header fields, 8 KB per field: far above what a client of this API sends).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
