"""Faults a real cluster can be made to show on demand: what the pack reports, that nothing is
lost or duplicated, and that a re-run finishes the job."""
import os
import signal
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

from ceph_env import create_volume, purge_image, run_action
from lib.ceph_cli import CephCli, CephCluster
from lib.errors import CephMigrateError, RbdNotFound
from lib.settings import DESTINATION, SOURCE


def sandbox_daemon(name: str, cluster: str) -> int:
    """The PID the Ceph sandbox recorded for daemon NAME of CLUSTER, checked against the
    process's command line (a PID is signalled only when it is still that daemon)."""
    if os.environ.get("CEPH_MIGRATE_TEST_CONFIG"):
        pytest.skip("freezes a Ceph daemon: never done to the clusters CEPH_MIGRATE_TEST_CONFIG "
                    "names, only to the project's own sandbox (as in CI)")
    state = Path(os.environ.get("CEPH_MIGRATE_SANDBOX_DIR", "/tmp/ceph_migrate_sandbox"))
    for line in (state / "pids").read_text().splitlines():
        pid, recorded, group = (line.split() + ["", "", ""])[:3]
        if recorded.startswith(name) and group == cluster:
            argv = Path("/proc/%s/cmdline" % pid).read_bytes().split(b"\0")
            assert os.path.basename(argv[0].decode()) == name and cluster.encode() in argv
            return int(pid)
    raise AssertionError("the sandbox recorded no %s of %s" % (name, cluster))


def resume_osd(settings, osd: int, probe: Optional[str] = None) -> None:
    """Let a frozen OSD go on, and wait until it serves I/O again. A lone OSD frozen past its
    read lease can come back with a PG left "laggy" and its ops blocked for good (seen in CI:
    a re-run's copy hung on it, and later `rbd info` of the half copy while a pool listing
    answered); marking it down makes it re-peer, as a restart would: done every time, then
    PROBE (an image spec) must answer too."""
    os.kill(osd, signal.SIGCONT)
    # the sandbox's admin (marking an OSD down is beyond the pack's own Ceph user)
    ceph = CephCli(CephCluster(settings.destination.name, conf=settings.destination.conf),
                   timeout=30, program="ceph")

    def states():
        found = ceph.run("pg", "stat") or {}
        return {s["name"] for s in (found.get("pg_summary") or found).get("num_pg_by_state", [])}

    ceph.run_text("osd", "down", "0")
    time.sleep(2)
    deadline = time.monotonic() + 30
    while any("laggy" in s or "active" not in s for s in states()):
        if time.monotonic() > deadline:
            ceph.run_text("osd", "down", "0")
            deadline = time.monotonic() + 120
        time.sleep(1)
    # PGs reported active can still hold an op blocked from the freeze (seen in CI: the
    # re-run's `rbd info` got no answer for 120 s): a pool listing must answer, else re-peer
    rbd = CephCli(CephCluster(settings.destination.name, conf=settings.destination.conf),
                  timeout=15)
    for _ in range(4):
        try:
            rbd.run("ls", settings.pools.destination_cinder)
            if probe:
                try:
                    rbd.run("info", probe)
                except RbdNotFound:
                    pass            # an answer too
            return
        except CephMigrateError:
            ceph.run_text("osd", "down", "0")
            time.sleep(5)


def test_a_copy_whose_destination_osd_stops_answering_is_stopped_and_a_rerun_finishes(
        settings, ceph_config):
    """The destination OSD frozen (SIGSTOP) in the middle of copy_replica: with
    copy.stall_timeout 10 s the copy is stopped after 10 s without progress (not after its
    2-hour timeout), the error says what `ceph health` reports, the final name is untouched;
    once the OSD answers again a re-run replaces the half copy and the copy verifies."""
    pools = settings.pools
    vid = create_volume(settings, 768)
    image = "volume-" + vid
    target = settings.image(DESTINATION, pools.destination_cinder, image)
    partial = settings.image(DESTINATION, pools.destination_cinder,
                             image + ".ceph_migrate-partial")
    config = dict(ceph_config, copy=dict(ceph_config.get("copy") or {}, stall_timeout=10))
    osd = sandbox_daemon("ceph-osd", settings.destination.name)
    done = {}
    try:
        for step in ("enable_mirroring", "wait_for_sync"):
            assert run_action(step, ceph_config, image=image).ok
        worker = threading.Thread(target=lambda: done.update(
            run=run_action("copy_replica", config, image=image)))
        worker.start()
        deadline = time.monotonic() + 120
        while not partial.exists():
            assert worker.is_alive(), done
            assert time.monotonic() < deadline, "the copy never started"
            time.sleep(0.05)
        os.kill(osd, signal.SIGSTOP)
        try:
            worker.join(timeout=300)
        finally:
            resume_osd(settings, osd, probe=partial.spec)
        assert not worker.is_alive()
        run = done["run"]
        assert not run.ok and run.result["error_type"] == "RbdStalled", run.result
        assert "no progress for 10s" in run.result["error"]
        assert "the cluster reports: HEALTH_" in run.result["error"]
        assert not target.exists()
        rerun = run_action("copy_replica", ceph_config, image=image)
        assert rerun.ok and rerun.result["removed_partial"] is True, rerun.result
        verified = run_action("verify_copy", ceph_config, image=image)
        assert verified.ok and verified.result["verified"] is True
        assert not partial.exists()
    finally:
        resume_osd(settings, osd)
        run_action("disable_mirroring", ceph_config, image=image, discard_replica=True)
        for name in (image, partial.name):
            purge_image(settings, DESTINATION, pools.destination_cinder, name)
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)
