#!/usr/bin/env bash
# The main job: install what is missing, start the whole stack on loopback, run the flash-sale
# demo and print its result (last line: one JSON object). Arguments go to `python -m ops.demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/bootstrap.sh
exec .venv/bin/python -m ops.demo "$@"
