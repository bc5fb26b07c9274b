#!/usr/bin/env bash
# Regenerate requirements.lock: the runtime dependencies of pyproject.toml ([project]
# dependencies, no extras) pinned exactly, with --hash lines for every file, so that
# `pip install --require-hashes -r requirements.lock` (see the Dockerfile) is reproducible.
# The build backend (setuptools, from [build-system] requires) is locked too, at the end of the
# file, so the image builds the project with --no-build-isolation from pinned, hashed files only;
# the Dockerfile removes it from the venv afterwards.
#
# Usage (from anywhere):   scripts/lock-requirements.sh            # keep current pins where possible
#                          scripts/lock-requirements.sh --upgrade  # move every pin to the newest allowed
#
# Resolves for the platform it runs on, which must match the image's: Linux x86_64, CPython 3.11
# (python:3.11-slim-bookworm). pip-tools lives in a throwaway venv, and pip's local configuration
# (extra indexes, find-links, constraints) is ignored so that only PyPI is consulted and the hashes
# are those of the files PyPI serves.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
LOCKVENV="${LOCKVENV:-/tmp/lockvenv}"
PIP_TOOLS_VERSION="7.6.2"

export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_REQUIRE_VIRTUALENV || true

"$PYTHON" -c 'import sys, platform; assert sys.version_info[:2] == (3, 11) and platform.machine() == "x86_64" and sys.platform == "linux", "lock on Linux x86_64 with CPython 3.11"'
[[ -x "$LOCKVENV/bin/pip-compile" ]] || {
  "$PYTHON" -m venv "$LOCKVENV"
  "$LOCKVENV/bin/pip" install --quiet "pip-tools==$PIP_TOOLS_VERSION"
}

CUSTOM_COMPILE_COMMAND="scripts/lock-requirements.sh   (pip-compile $PIP_TOOLS_VERSION in $LOCKVENV: pip-compile --generate-hashes --strip-extras --all-build-deps --allow-unsafe pyproject.toml)" \
  "$LOCKVENV/bin/pip-compile" --quiet --generate-hashes --strip-extras --no-emit-index-url \
  --no-emit-find-links --all-build-deps --allow-unsafe \
  --output-file requirements.lock "$@" pyproject.toml
