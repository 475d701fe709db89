#!/usr/bin/env bash
# The test command: install what is missing, start the real services, run the whole suite.
# Arguments go to pytest (e.g. ops/test.sh -k contention).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/bootstrap.sh --for-tests
# Started here, before pytest captures output, so a first run's Kafka download shows its
# progress; the test session's own `stack up` then finds everything answering.
.venv/bin/python -m ops.stack up
exec .venv/bin/python -m pytest "$@"
