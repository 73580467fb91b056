#!/usr/bin/env bash
# The one test command: set up everything the tests need, then run lint, types and tests.
#   - a virtual environment at .venv with facetrace and its dev + milvus extras (pinned);
#   - a throwaway Milvus standalone server on 127.0.0.1 (PyPI `milvus`, no Docker),
#     stopped and deleted afterwards;
#   - ruff (lint + format check), mypy on src/, and pytest.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,milvus]"

echo "== ruff"
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
echo "== mypy"
.venv/bin/mypy
echo "== pytest (with a Milvus server on 127.0.0.1)"
exec .venv/bin/python scripts/milvus_server.py run -- .venv/bin/python -m pytest -q "$@"
