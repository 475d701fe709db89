#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: the services' packages (apt-get)
# and the Python virtual environment with the project and its dev extras (pip). Idempotent.
# --for-tests also installs what only the tests use: Debian's Chromium and chromedriver (browser
# tests), Prometheus and promtool (alert rules and dashboard queries).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m ops.stack packages "$@"

if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.booking-rush-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[bootstrap] installing Python dependencies into .venv (pip)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
echo "[bootstrap] ready"
