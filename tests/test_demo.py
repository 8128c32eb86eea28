"""The README's first command ends in sandbox/demo.py: it must keep migrating both kinds of
volume on the sandbox, verified (the setup and `up` steps before it are exercised by every
other integration test)."""
import re
import subprocess
import sys

from ceph_env import REPO
from openstack_env import delete_quietly, forget_migration
from runner.local import LocalRunner


def test_the_demo_migrates_a_data_and_a_boot_volume(settings, full_config, clouds):
    run = subprocess.run([sys.executable, str(REPO / "sandbox" / "demo.py"), "--fill-mib", "64"],
                         capture_output=True, text=True, timeout=900)
    created = re.findall(r"created (data|boot) volume ([0-9a-f-]{36})", run.stdout)
    try:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert [kind for kind, _ in created] == ["data", "boot"]
        assert run.stdout.count("sha256 equal") == 2
        assert run.stdout.count("approved (demo)") == 6
        assert "migrate_volume: succeeded" in run.stdout
        assert "migrate_boot_volume: succeeded" in run.stdout
    finally:
        for kind, volume_id in created:
            if kind == "boot":
                LocalRunner(full_config, answer=lambda g, p: {"approved": True}).run(
                    "ceph_migrate.rollback", volume_id=volume_id, procedure="boot")
                delete_quietly(clouds["pa1-admin"], "volume", volume_id)
            else:
                forget_migration(settings, full_config, clouds, volume_id)
