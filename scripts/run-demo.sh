#!/usr/bin/env bash
# Run Sagip with its demo data: PostGIS + Redis, migrations, demo nationals and users,
# a Celery worker in the background and the API (gunicorn) on http://127.0.0.1:${PORT:-8000}.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pg_lsclusters >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    # No local PostgreSQL but a Docker engine: the whole stack in containers.
    docker compose up --build -d --wait
    docker compose --profile demo run --rm demo
    echo "[run-demo] console on http://127.0.0.1:8000/console/, API on http://127.0.0.1:8000/api/v1/docs (docker compose logs -f api worker)" >&2
    exec docker compose logs -f api worker
fi
source scripts/bootstrap.sh
registry db upgrade
registry demo --nationals "${DEMO_NATIONALS:-5000}"
mkdir -p .run
registry worker > .run/worker.log 2>&1 &
worker_pid=$!
trap 'kill "$worker_pid" 2>/dev/null || true' EXIT
echo "[run-demo] worker started (pid $worker_pid, log .run/worker.log)" >&2
echo "[run-demo] console on http://127.0.0.1:${PORT:-8000}/console/ (the demo users' passwords are printed above)" >&2
echo "[run-demo] API on http://127.0.0.1:${PORT:-8000}/api/v1/docs  (Ctrl-C stops both)" >&2
registry serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
