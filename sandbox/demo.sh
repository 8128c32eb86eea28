#!/usr/bin/env bash
# A newcomer's first command: install what is missing, start the two Ceph clusters (rbd-mirror)
# and the two OpenStack clouds on them, then migrate a tenant's data volume and boot volume
# from pa1 to ct1 with the pack's workflows, every gate answered, content verified.
set -euo pipefail
cd "$(dirname "$0")/.."
bash sandbox/setup.sh
.venv/bin/python sandbox/ceph_sandbox.py up
.venv/bin/python sandbox/openstack_sandbox.py up
.venv/bin/python sandbox/demo.py "$@"
