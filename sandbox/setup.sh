#!/usr/bin/env bash
# Install what the project needs on a Debian machine (idempotent, as root):
#   - Debian's Ceph Pacific packages (ceph-mon, ceph-osd, ceph-mgr, ceph-common, rbd-mirror)
#   - python3-venv when `python3 -m venv` does not work
#   - the virtualenv .venv with requirements.txt + requirements-tests.txt (redone only when they change)
# With --python-only just the virtualenv, as any user (what the fast test lane needs).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PYTHON_ONLY=$([ "${1:-}" = "--python-only" ] && echo 1 || echo 0)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
  if [ "$PYTHON_ONLY" = 1 ]; then
    echo "setup: $PYTHON cannot make a virtualenv: install python3-venv (as root)" >&2
    exit 1
  fi
  echo "setup: installing python3-venv"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q python3-venv python3-pip
fi

ORQUESTA=orquesta==1.2.0      # StackStorm's workflow engine, for the local runner and its tests
stamp=.venv/.requirements.sha256
wanted=$( (cat requirements.txt requirements-tests.txt; echo "$ORQUESTA") | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt -r requirements-tests.txt
  .venv/bin/python -m pip install -q --no-deps "$ORQUESTA"
  echo "$wanted" > "$stamp"
fi

if [ "$PYTHON_ONLY" = 1 ]; then
  echo "setup: done (.venv ready)"
  exit 0
fi
as_root "$PYTHON" sandbox/ceph_sandbox.py install
echo "setup: done (.venv ready, Ceph packages installed)"
