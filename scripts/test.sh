#!/usr/bin/env bash
# The one test command: set up everything the tests need, then run lint, types and tests.
#   - a virtual environment at .venv with facetrace and its dev, milvus and postgres
#     extras (pinned);
#   - a throwaway Milvus standalone server on 127.0.0.1 (PyPI `milvus`, no Docker),
#     stopped and deleted afterwards;
#   - Debian's postgresql (installed if missing) and a throwaway PostgreSQL server on
#     127.0.0.1 in a temporary folder (scripts/pg_server.py), stopped and deleted
#     afterwards: the store, governance, audit and jobs tests run on it as well;
#   - Debian's chromium (the web UI's browser tests drive it with Playwright; no browser
#     is downloaded) and poppler-utils (pdftotext reads the case reports back);
#   - ruff (lint + format check), mypy on src/, and pytest.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,milvus,postgres,ray]"
DEBIAN_NEEDS=()
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    DEBIAN_NEEDS+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || DEBIAN_NEEDS+=(chromium)
command -v pdftotext >/dev/null 2>&1 || DEBIAN_NEEDS+=(poppler-utils)
if [ ${#DEBIAN_NEEDS[@]} -gt 0 ]; then
    echo "== installing Debian ${DEBIAN_NEEDS[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${DEBIAN_NEEDS[@]}" >/dev/null
fi

echo "== ruff"
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
echo "== mypy"
.venv/bin/mypy
echo "== pytest (with Milvus and PostgreSQL servers on 127.0.0.1)"
export FACETRACE_REQUIRE_POSTGRES=1  # a PostgreSQL run that cannot start fails, never skips
export FACETRACE_REQUIRE_BROWSER=1  # so do the browser tests without Chromium
exec .venv/bin/python scripts/milvus_server.py run -- \
    .venv/bin/python scripts/pg_server.py run -- .venv/bin/python -m pytest -q "$@"
