#!/usr/bin/env bash
# A newcomer's first command: install what is missing, start the two-cluster sandbox and migrate
# a volume's data from cluster ceph to cephpa1 (both mirror modes), verified by sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
bash sandbox/setup.sh
.venv/bin/python sandbox/ceph_sandbox.py up
.venv/bin/python sandbox/demo.py --mode snapshot "$@"
.venv/bin/python sandbox/demo.py --mode journal "$@"
