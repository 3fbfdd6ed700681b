#!/usr/bin/env bash
# Run Sagip with its demo data: PostGIS + Redis, migrations, demo nationals and users,
# the gateways (Kannel + fakesmsc, an SMTP sink: registry gateways up), a Celery worker in the background and
# the API (gunicorn) on http://127.0.0.1:${PORT:-8000}.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pg_lsclusters >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    # No local PostgreSQL but a Docker engine: the whole stack in containers.
    docker compose up --build -d --wait --scale worker="${WORKERS:-1}"
    docker compose --profile demo run --rm demo
    echo "[run-demo] console on http://127.0.0.1:8000/console/, API on http://127.0.0.1:8000/api/v1/docs (docker compose logs -f api worker)" >&2
    exec docker compose logs -f api worker
fi
source scripts/bootstrap.sh
registry db upgrade
registry demo --nationals "${DEMO_NATIONALS:-5000}"
mkdir -p .run
# The gateways: Kannel + fakesmsc (SMS) and an SMTP sink (email); what they receive goes to .run/gateways/.
rm -f .run/gateways.env
registry gateways up --port-base "${GATEWAYS_PORT_BASE:-14500}" --hook-base "http://127.0.0.1:${PORT:-8000}" \
    --log-dir .run/gateways --env-file .run/gateways.env > /dev/null 2> .run/gateways.log &
gateways_pid=$!
trap 'kill "$gateways_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do [ -s .run/gateways.env ] && break; kill -0 "$gateways_pid" 2>/dev/null || break; sleep 0.5; done
if [ ! -s .run/gateways.env ]; then
    echo "[run-demo] the gateways did not start (.run/gateways.log):" >&2; cat .run/gateways.log >&2; exit 1
fi
source .run/gateways.env  # export REGISTRY_SMS_URL, REGISTRY_SMTP_URL, ... for the worker and the server
echo "[run-demo] gateways up (pid $gateways_pid): SMS received by fakesmsc in .run/gateways/sms.log, mails in .run/gateways/mail.log" >&2
# One worker with the beat scheduler inside; WORKERS=N adds N-1 more without (one beat per deployment).
registry worker --name "w1@%h" > .run/worker.log 2>&1 &
worker_pids="$!"
for i in $(seq 2 "${WORKERS:-1}"); do
    registry worker --no-beat --name "w$i@%h" > ".run/worker-$i.log" 2>&1 &
    worker_pids="$worker_pids $!"
done
trap 'kill $worker_pids 2>/dev/null || true; kill "$gateways_pid" 2>/dev/null || true; wait "$gateways_pid" 2>/dev/null || true' EXIT
echo "[run-demo] ${WORKERS:-1} worker(s) started (pids $worker_pids, logs .run/worker*.log)" >&2
echo "[run-demo] console on http://127.0.0.1:${PORT:-8000}/console/ (the demo users' passwords are printed above)" >&2
echo "[run-demo] API on http://127.0.0.1:${PORT:-8000}/api/v1/docs  (Ctrl-C stops them all)" >&2
registry serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
