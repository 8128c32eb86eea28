#!/usr/bin/env bash
# The test command (README, .ci/run): install what is missing, then run every test. Tests that need
# Ceph start the project's sandbox themselves and stop it again if they started it.
#   bash tests/run.sh           every tier (installs Ceph as root first)
#   bash tests/run.sh --fast    the fast lane: unit and workflow tests, no root, no cluster, on two
#                               workers (pytest-xdist); the tiers with a cluster run one at a time
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fast" ]; then
  shift
  bash sandbox/setup.sh --python-only
  exec .venv/bin/python -m pytest tests/ -q -p no:cacheprovider -m "unit or workflows" -n 2 "$@"
fi
bash sandbox/setup.sh
exec .venv/bin/python -m pytest tests/ -q -p no:cacheprovider --durations=40 "$@"
