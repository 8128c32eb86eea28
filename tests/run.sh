#!/usr/bin/env bash
# The test command (README, .ci/run): install what is missing, then run every test. Tests that need
# a sandbox find it up, or start it themselves and stop it again if they started it.
#   bash tests/run.sh           every tier (installs Ceph as root first): the sandboxes come up
#                               beside the fast lane (it needs none of them; the machine's two
#                               cores share the wait), then the tiers with a cluster run one at a
#                               time; what this script started, it stops at the end
#   bash tests/run.sh --fast    the fast lane: unit and workflow tests, no root, no cluster, on two
#                               workers (pytest-xdist)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
FAST=(-m "unit or workflows" -n 2)
if [ "${1:-}" = "--fast" ]; then
  shift
  bash sandbox/setup.sh --python-only
  exec $PY -m pytest tests/ -q -p no:cacheprovider "${FAST[@]}" "$@"
fi
bash sandbox/setup.sh

# the sandboxes this run brings up (not those already up, not when pointed at real clusters)
started=()
logs=$(mktemp -d /tmp/ceph_migrate_tests.XXXXXX)
stop_started() {
  [ -n "${CEPH_MIGRATE_KEEP_SANDBOX:-}" ] && return 0
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    $PY "sandbox/${started[i]}_sandbox.py" down --wipe > "$logs/${started[i]}-down.log" 2>&1 ||
      echo "tests/run.sh: ${started[i]} sandbox down failed (see $logs)" >&2
  done
}
trap stop_started EXIT
bring_up=()
if [ -z "${CEPH_MIGRATE_TEST_CONFIG:-}" ]; then
  for name in ceph openstack st2; do
    $PY "sandbox/${name}_sandbox.py" status > /dev/null 2>&1 || bring_up+=("$name")
  done
fi
up_pid=
if [ ${#bring_up[@]} -gt 0 ]; then
  started=("${bring_up[@]}")
  # installs one after the other (apt takes one at a time), then OpenStack (on Ceph) and
  # StackStorm side by side
  (
    set -e
    for name in "${bring_up[@]}"; do
      [ "$name" = ceph ] || $PY "sandbox/${name}_sandbox.py" install
    done
    $PY sandbox/ceph_sandbox.py up
    pids=()
    for name in "${bring_up[@]}"; do
      if [ "$name" != ceph ]; then
        $PY "sandbox/${name}_sandbox.py" up > "$logs/$name-up.log" 2>&1 & pids+=($!)
      fi
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
  ) > "$logs/sandboxes.log" 2>&1 &
  up_pid=$!
fi
# pytest's 5 (nothing selected, e.g. -k naming tests of one lane only) is not a failure
run_lane() { local rc=0; $PY -m pytest tests/ -q -p no:cacheprovider "$@" || rc=$?
             [ $rc -eq 5 ] && rc=0; [ $rc -eq 0 ] || status=$rc; }
status=0
run_lane "${FAST[@]}" "$@"
if [ -n "$up_pid" ] && ! wait "$up_pid"; then
  echo "tests/run.sh: the sandboxes did not come up:" >&2
  tail -n 40 "$logs"/*.log >&2
  exit 1
fi
run_lane -m "not unit and not workflows" --durations=40 "$@"
exit $status
