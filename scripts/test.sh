#!/usr/bin/env bash
# The test command: a virtual environment with the project and its test extras, then the whole suite.
# pytest exits 5 when no test ran; with `set -e` that fails this script too.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# the static checks first (seconds), then the suite: lint and format (ruff), types (mypy, pyproject's [tool.mypy])
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# a worker per core (at most 4: a many-core host may give us only part of it), each test file on
# one worker (some files build a study test by test)
exec .venv/bin/python -m pytest -n auto --maxprocesses 4 --dist loadfile "$@"
