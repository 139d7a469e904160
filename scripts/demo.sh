#!/usr/bin/env bash
# A whole demo study against the bundled emulator, in ./demo-data: every stage, then a refresh, then the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/python -m tiktok_spiders.demo "$@"
