# Sagip image: the API (gunicorn), the Celery worker and the `registry` CLI.
#
#   docker build -t sagip .                          # runtime image
#   docker build --build-arg EXTRAS=test -t sagip:test .   # + pytest (docker-compose's `tests` service)
#   docker build --target kannel -t sagip-kannel .    # + Debian's Kannel (docker-compose's `kannel`, `fakesmsc`)
#
# The repository files live in /app and PYTHONPATH=/app makes every process
# (the `registry` console script included) import the code from there, not the
# copy that `pip install .` puts in site-packages: the first migration reads
# geodata/country_points.csv relative to the repository root
# (migrations/versions/ -> ../../geodata), so it must run from /app/migrations.
# Debian 12 (bookworm), pinned: it ships Kannel 1.4.5 (the `kannel` target below), as checked on the build
# machines; a newer Debian base may not.
FROM python:3.11-slim-bookworm AS app

# Optional extras of pyproject.toml to install, comma-separated (e.g. "test").
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONPATH=/app \
    REGISTRY_DATA_DIR=/data

# Non-root user; /data (development keys, Celery beat schedule) belongs to it,
# so a fresh named volume mounted there is writable too.
RUN groupadd --system --gid 10001 sagip \
    && useradd --system --uid 10001 --gid sagip --create-home --home-dir /home/sagip \
       --shell /usr/sbin/nologin sagip \
    && mkdir -p /data \
    && chown sagip:sagip /data

# Fonts for the PDF manifests (names in Arabic, Indic, Thai, Ethiopic and CJK scripts; see
# registry/rosters/pdf.py and scripts/bootstrap.sh); pg_dump and pg_restore 15 (bookworm's, the server's
# major version) for `registry backup` / `registry restore`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-dejavu-extra fonts-noto-ui-core \
       fonts-sil-abyssinica fonts-wqy-microhei postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# With the test extras: Debian's Chromium for the console's browser tests (Playwright drives it; its own
# browser download needs the internet); tests/browser/conftest.py finds it on the PATH.
RUN case ",$EXTRAS," in *,test,*) apt-get update \
        && apt-get install -y --no-install-recommends chromium fonts-liberation \
        && rm -rf /var/lib/apt/lists/* ;; esac

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a code change does not
# reinstall them. (README.md* : the file is optional for the build.)
COPY pyproject.toml README.md* ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extras = [e.strip() for e in os.environ.get('EXTRAS', '').split(',') if e.strip()]; print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
       > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY registry/ registry/
COPY tasks/ tasks/
COPY migrations/ migrations/
COPY geodata/ geodata/
COPY tests/ tests/

# The package itself (console script `registry`); the in-tree build leftovers
# are removed so /app holds only the repository files. The smoke check keeps
# its development key out of /data (a root-owned key there would be unreadable).
RUN if [ -n "$EXTRAS" ]; then target=".[$EXTRAS]"; else target="."; fi \
    && pip install --no-cache-dir "$target" \
    && rm -rf build ./*.egg-info \
    && REGISTRY_DATA_DIR=/tmp/build-check registry --help > /dev/null \
    && rm -rf /tmp/build-check

# numeric, so that runtimes can verify it is not root (runAsNonRoot)
USER 10001:10001

VOLUME ["/data"]
EXPOSE 8000

CMD ["registry", "serve", "--host", "0.0.0.0", "--port", "8000"]

# docker-compose's `kannel` and `fakesmsc` services: the same image with Debian's Kannel (bearerbox, smsbox)
# and its fake SMSC client (kannel-extras); `registry gateways up --kannel-only` writes Kannel's configuration
# (registry/gateways/local.py, the one renderer the tests and the demo use too).
FROM app AS kannel
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends kannel kannel-extras \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001

# The default target: the service's image.
FROM app
