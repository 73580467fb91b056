#!/usr/bin/env bash
# The one test command: set up everything the tests need, then run lint, types and tests.
#   - a virtual environment at .venv with facetrace and its dev, milvus and postgres
#     extras (pinned);
#   - a throwaway Milvus standalone server on 127.0.0.1 (PyPI `milvus`, no Docker),
#     stopped and deleted afterwards;
#   - Debian's postgresql (installed if missing) and a throwaway PostgreSQL server on
#     127.0.0.1 in a temporary folder (scripts/pg_server.py), stopped and deleted
#     afterwards: the store, governance, audit and jobs tests run on it as well;
#   - ruff (lint + format check), mypy on src/, and pytest.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,milvus,postgres]"
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    echo "== installing Debian postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

echo "== ruff"
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
echo "== mypy"
.venv/bin/mypy
echo "== pytest (with Milvus and PostgreSQL servers on 127.0.0.1)"
export FACETRACE_REQUIRE_POSTGRES=1  # a PostgreSQL run that cannot start fails, never skips
exec .venv/bin/python scripts/milvus_server.py run -- \
    .venv/bin/python scripts/pg_server.py run -- .venv/bin/python -m pytest -q "$@"
