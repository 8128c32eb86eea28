"""The real OpenStack clouds for tests: pa1 (source, on Ceph cluster ``ceph``) and ct1
(destination, on ``cephpa1``), started by the project's own sandbox script when needed."""
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict

import pytest

from ceph_env import REPO, write_random
from lib.names import SOURCE_ID_KEY
from lib.settings import DESTINATION, SOURCE

OS_SANDBOX = REPO / "sandbox" / "openstack_sandbox.py"


def _os_sandbox(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(OS_SANDBOX)] + list(args), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def openstack_facts(ceph_config) -> Dict[str, Any]:
    """Facts of the two running clouds (sandbox/openstack_sandbox.py writes openstack.json)."""
    was_up = _os_sandbox("status").returncode == 0
    up = _os_sandbox("up")
    assert up.returncode == 0, "OpenStack sandbox did not come up:\n%s\n%s" % (
        up.stdout[-3000:], up.stderr[-3000:])
    state = Path(os.environ.get("CEPH_MIGRATE_OPENSTACK_DIR", "/tmp/ceph_migrate_openstack"))
    yield json.loads((state / "openstack.json").read_text())
    if not was_up and not os.environ.get("CEPH_MIGRATE_KEEP_SANDBOX"):
        _os_sandbox("down", "--wipe")


@pytest.fixture(scope="session")
def full_config(ceph_config, openstack_facts) -> Dict[str, Any]:
    """The pack config for both clusters and both clouds."""
    from sandbox.pack_config import with_openstack
    return with_openstack(ceph_config, openstack_facts)


@pytest.fixture(scope="session")
def clouds(openstack_facts) -> Dict[str, Any]:
    """openstacksdk connections: pa1-admin, pa1-tenant, ct1-admin, ct1-tenant."""
    import openstack.config
    config = openstack.config.OpenStackConfig(config_files=[openstack_facts["clouds_yaml"]])
    return {name: openstack.connection.Connection(config=config.get_one(cloud=name))
            for name in ("pa1-admin", "pa1-tenant", "ct1-admin", "ct1-tenant")}


def create_source_volume(clouds, settings, size_gib: int = 1, fill_mib: int = 256,
                         bootable: bool = False, volume_type: str = "ceph",
                         description: str = "migrated by the tests", **extra) -> Any:
    """A tenant volume at the source with random data written into its RBD image."""
    conn = clouds["pa1-tenant"]
    volume = _create_volume(conn, name="vol-%s" % uuid.uuid4().hex[:8], size=size_gib,
                            volume_type=volume_type, description=description,
                            metadata={"app": "tests"}, **extra)
    volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"],
                                                interval=1, wait=120)
    if bootable:
        conn.block_storage.set_volume_bootable_status(volume, True)
    if fill_mib:
        spec = "%s/volume-%s" % (settings.pools.mirrored_cinder, volume.id)
        write_random(settings, SOURCE, spec, fill_mib)
    return conn.block_storage.get_volume(volume.id)


def _create_volume(conn, **attrs) -> Any:
    """Test setup: one retry when cinder-api answers 500 (seen once in CI, right after the
    clouds came up); a second failure shows the end of cinder-api's log."""
    import openstack.exceptions as osexc

    for attempt in (1, 2):
        try:
            return conn.block_storage.create_volume(**attrs)
        except osexc.HttpException as exc:
            if attempt == 2 or (exc.status_code or 0) < 500:
                state = os.environ.get("CEPH_MIGRATE_OPENSTACK_DIR",
                                       "/tmp/ceph_migrate_openstack")
                log = Path(state) / "pa1" / "log" / "cinder-api.log"
                tail = log.read_text()[-4000:] if log.exists() else "(no log)"
                raise AssertionError("create_volume failed: %s\n%s" % (exc, tail)) from None
            time.sleep(2)


def delete_quietly(conn, kind: str, resource_id: str) -> None:
    try:
        if kind == "volume":
            conn.block_storage.delete_volume(resource_id, ignore_missing=True, force=True)
        else:
            conn.image.delete_image(resource_id, ignore_missing=True)
    except Exception:
        pass


def wait_gone(conn, volume_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.block_storage.find_volume(volume_id, ignore_missing=True,
                                          all_projects=True) is None:
            return
        time.sleep(1)


def cloud_fingerprint(clouds) -> Dict[str, Any]:
    """Every volume and image of both clouds with the fields a step could change."""
    state: Dict[str, Any] = {}
    for name in ("pa1-admin", "ct1-admin"):
        conn = clouds[name]
        for v in conn.block_storage.volumes(all_projects=True):
            state["%s:volume:%s" % (name, v.id)] = [v.name, v.status, v.project_id, v.size,
                                                    dict(v.metadata or {}), v.is_bootable]
        for i in conn.image.images():
            state["%s:image:%s" % (name, i.id)] = [i.name, i.status, i.owner, i.size]
    return state


def forget_migration(settings, config, clouds, volume_id: str) -> None:
    """Test cleanup of a data-volume migration: whatever it left at the destination, the
    mirroring and the source volume go (the steps ignore what is already gone)."""
    from ceph_env import purge_image, run_action
    from lib.settings import DESTINATION

    image = "volume-" + volume_id
    run_action("rollback_destination", config, source_id=volume_id,
               destination_project="tenant", delete_data=True)
    purge_image(settings, DESTINATION, settings.pools.destination_cinder, image)
    # placement promote: a promoted replica goes (the pack's own check: a replica rbd-mirror
    # still replays is refused, disabling the source's mirroring removes it) and a demoted
    # source is promoted again (both refused, and ignored, when there is nothing to do)
    run_action("remove_copy", config, image=image, pool=settings.pools.mirrored_cinder)
    run_action("promote_image", config, image=image, cluster="source", wait_seconds=30)
    run_action("disable_mirroring", config, image=image, discard_replica=True)
    run_action("drop_sync_snapshots", config, image=image, side="source")
    delete_quietly(clouds["pa1-admin"], "volume", volume_id)


def source_sha(settings, volume_id):
    return settings.rbd(SOURCE).export_sha256("%s/volume-%s" % (
        settings.pools.mirrored_cinder, volume_id), timeout=600)[0]


def destination_sha(settings, pool, image):
    return settings.rbd(DESTINATION).export_sha256("%s/%s" % (pool, image), timeout=600)[0]


def migrated(clouds, source_id):
    """Every destination volume made from SOURCE_ID (exactly one after a migration)."""
    return [v for v in clouds["ct1-admin"].block_storage.volumes(all_projects=True)
            if (v.metadata or {}).get(SOURCE_ID_KEY) == source_id]


def eventually(check, timeout=60.0):
    """The last value of CHECK once it is truthy, or after TIMEOUT (rbd-mirror deletes a
    discarded replica asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(1)
