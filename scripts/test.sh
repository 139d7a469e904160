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
# cffconvert, which checks CITATION.cff (tests/test_publish.py), in a venv of its own: it pins an old
# jsonschema that frictionless cannot use
if [ ! -x .venv-tools/bin/cffconvert ]; then
  python3 -m venv .venv-tools
  .venv-tools/bin/python -m pip install --quiet 'cffconvert>=2,<3'
fi
# the static checks first (seconds), then the suite: lint and format (ruff), types (mypy, pyproject's [tool.mypy])
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# one worker more than cores, at most 5 (a many-core host may give us only part of it): tests spend
# part of their time waiting for the emulator's latency, backoffs and pacing, and the extra worker
# runs while they wait (on two cores, when this was chosen: 3 min with two workers, 2 min 40 s with
# three).  Each test file runs on one worker (some build a study test by test), the longest files
# first (tests/conftest.py).
workers=$(( $(nproc) + 1 ))
if (( workers > 5 )); then
  workers=5
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
