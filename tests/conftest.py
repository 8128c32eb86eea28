# st2_support first: it puts the StackStorm stand-ins (when st2 is absent) and actions/ on sys.path
from st2_support import make_action, make_sensor, pack_config  # noqa: F401
from ceph_env import ceph_config, settings  # noqa: F401,E402  (the real Ceph sandbox)
from openstack_env import clouds, full_config, openstack_facts  # noqa: F401,E402 (two clouds)
from st2_env import broker_proxies, st2_facts, st2_pack  # noqa: F401,E402 (real StackStorm)

import os  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

# the local runner's datastore in a file of this test process's own, shared with the runners
# it starts (python -m runner), as st2's datastore is shared by its executions
os.environ["CEPH_MIGRATE_LOCAL_DATASTORE"] = os.path.join(
    tempfile.mkdtemp(prefix="ceph_migrate_datastore_"), "datastore.json")

# Tiers (setup.cfg registers the markers). The fast lane (tests/run.sh --fast) runs the first two.
FAST_TIERS = ("unit", "workflows")
TIERS = FAST_TIERS + ("integration", "e2e")
# The session fixtures that start a sandbox (a cluster, the clouds, StackStorm): a test whose
# fixtures reach one of them needs the machine, whatever its file is called.
SANDBOX_FIXTURES = frozenset(("ceph_config", "openstack_facts", "st2_facts"))
WORKFLOW_FILES = frozenset(("test_workflows.py", "test_runner_validation.py"))
E2E_FILES = frozenset(("test_e2e_workflows.py", "test_demo.py", "test_stackstorm.py"))


def tier_of(filename: str, needs_sandbox: bool) -> str:
    """A test's tier from its file and whether it needs a sandbox, so a new test lands in the
    right lane without being marked, and no test that needs a cluster lands in the fast one."""
    if needs_sandbox:
        return "e2e" if filename in E2E_FILES else "integration"
    return "workflows" if filename in WORKFLOW_FILES else "unit"


def pytest_collection_modifyitems(config, items):
    for item in items:
        needs_sandbox = bool(SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())))
        marked = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if needs_sandbox and set(marked) & set(FAST_TIERS):
            raise pytest.UsageError("%s needs a sandbox but is marked %s (the fast lane runs "
                                    "without one)" % (item.nodeid, marked))
        if not marked:
            item.add_marker(tier_of(item.path.name, needs_sandbox))
