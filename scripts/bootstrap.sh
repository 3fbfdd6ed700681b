#!/usr/bin/env bash
# Bring up what Sagip needs on this machine: PostgreSQL + PostGIS, Redis, the Python package.
# Idempotent: installs only what is missing, starts only what is down.
# Uses the local PostgreSQL install (Debian), installing PostGIS with apt if needed. Machines without
# one but with a Docker engine use docker-compose.yml instead (see .ci/run and scripts/run-demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else eval "$*"; fi; }

if command -v pg_lsclusters >/dev/null 2>&1 && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    PG_MAJOR=$(ls /etc/postgresql | sort -n | tail -n 1)
    if [ ! -f "/usr/share/postgresql/$PG_MAJOR/extension/postgis.control" ]; then
        log "installing PostGIS for PostgreSQL $PG_MAJOR (apt)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "postgresql-$PG_MAJOR-postgis-3" >/dev/null
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        log "starting PostgreSQL $PG_MAJOR"
        pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    # Fonts for the PDF manifests: Latin, Greek, Cyrillic, Hebrew, Arabic (DejaVu), Indic, Sinhala, Thai
    # (Noto UI), Ethiopic (Abyssinica), Chinese, Japanese, Korean (WenQuanYi); about 7 MB.
    FONT_PACKAGES="fonts-dejavu-core fonts-dejavu-extra fonts-noto-ui-core fonts-sil-abyssinica fonts-wqy-microhei"
    missing_fonts=$(for p in $FONT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing_fonts" ]; then
        log "installing PDF fonts (apt): $missing_fonts"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $missing_fonts >/dev/null
    fi
    # Chromium for the console's browser tests (Playwright drives Debian's build: its own download needs
    # the internet).
    if ! command -v chromium >/dev/null 2>&1; then
        log "installing Chromium for the browser tests (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium fonts-liberation >/dev/null
    fi
    # Kannel (bearerbox + smsbox) and its fake SMSC client (kannel-extras: /usr/lib/kannel/test/fakesmsc) for
    # the SMS channel's tests, the demo and bench/outreach.py (registry/gateways/local.py runs them).
    if [ ! -x /usr/sbin/bearerbox ] || [ ! -x /usr/lib/kannel/test/fakesmsc ]; then
        log "installing Kannel and its fake SMSC (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            kannel kannel-extras >/dev/null
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        log "installing Redis (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        log "starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
        for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
    fi
else
    log "no local PostgreSQL found (Debian postgresql packages); with Docker use: docker compose up"
    exit 1
fi

if ! python3 -c "import registry, pytest" >/dev/null 2>&1 || [ pyproject.toml -nt .bootstrap-installed ]; then
    log "installing the Python package and its dependencies (pip)"
    python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v -E "^WARNING: (Running pip as|Location)" || true
    touch .bootstrap-installed
fi

# The service's database (the tests make their own).
DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/sagip}"
python3 - "$DATABASE_URL" <<'PY'
import sys
import psycopg
url = sys.argv[1]
base, _, name = url.rpartition("/")
with psycopg.connect(base + "/postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"[bootstrap] created database {name}", file=sys.stderr)
PY
