# The roadmap service: `roadmap serve` migrates, seeds an empty database and serves on $PORT.
#
#   docker build -t roadmap .
#   docker run -p 8000:8000 -v roadmap-data:/data roadmap                 # SQLite in /data
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql://user:pw@db:5432/roadmap roadmap
#
# Dependencies come from requirements.lock (exact pins + hashes; regenerate with
# scripts/lock-requirements.sh after changing [project] dependencies in pyproject.toml).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# build: a venv in /opt/venv holding the locked dependencies and the project itself
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies first, in their own layer, so that code changes do not reinstall them.
# Wheels only: nothing is compiled, so the image needs no build tools.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --only-binary=:all: --no-deps -r /tmp/requirements.lock

# The project itself, without touching the locked dependencies, built by the locked setuptools
# (the lock's last entry, pyproject.toml [build-system]) with nothing fetched from the index.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
# `pip check` fails the build if pyproject.toml gained a dependency that requirements.lock lacks.
# pip and setuptools are then dropped from the venv: the service never needs them at run time.
RUN pip install --no-deps --no-build-isolation --no-index . \
 && pip check \
 && python -m pip uninstall --yes --quiet pip setuptools

# ---------------------------------------------------------------------------------------------
# runtime: the venv, alembic.ini and migrations/, a non-root user and a volume for SQLite
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG UID=10001
ARG GID=10001
RUN groupadd --gid "${GID}" roadmap \
 && useradd --uid "${UID}" --gid roadmap --no-create-home --no-log-init --home-dir /nonexistent \
        --shell /usr/sbin/nologin roadmap \
 && mkdir -p /data \
 && chown roadmap:roadmap /data

COPY --from=build /opt/venv /opt/venv
# For `alembic -c /app/alembic.ini …` by hand; the service itself migrates from the copy of
# migrations/ that ships inside the package (service.migrations).
COPY alembic.ini /app/alembic.ini
COPY migrations /app/migrations

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/roadmap.db \
    PORT=8000 \
    WEB_CONCURRENCY=1

WORKDIR /app
# The SQLite database (and its .migrate-lock file) when DATABASE_URL is left as it is.
VOLUME ["/data"]
USER ${UID}:${GID}
EXPOSE 8000

# Standard library only: the slim image has no curl. /healthz does not touch the database.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=3)"]

# Exec form: `roadmap` is PID 1 and receives SIGTERM itself (uvicorn shuts down gracefully).
CMD ["roadmap", "serve", "--host", "0.0.0.0"]
