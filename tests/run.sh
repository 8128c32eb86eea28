#!/usr/bin/env bash
# The test command (README, .ci/run): install what is missing, then run every test. Tests that need
# Ceph start the project's sandbox themselves and stop it again if they started it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash sandbox/setup.sh
exec .venv/bin/python -m pytest tests/ -q -p no:cacheprovider "$@"
