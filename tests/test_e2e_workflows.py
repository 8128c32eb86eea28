"""The workflows end to end: the real workflow files through orquesta's conductor (the local
runner), the real actions, the two real clouds on the real Ceph pair."""
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from ceph_env import REPO, fingerprint, purge_image, run_action, write_random
from lib.names import SOURCE_ID_KEY
from lib.settings import DESTINATION, SOURCE
from openstack_env import (cloud_fingerprint, create_source_volume, delete_quietly,
                           destination_sha, eventually, forget_migration, migrated, source_sha,
                           wait_gone)
from runner.local import LocalRunner


@contextlib.contextmanager
def runner_process(*args):
    """``python -m runner run ARGS --sandbox --yes`` as a user types it, in a session of its
    own so that a kill takes what it started (rbd included) with it; killed on the way out
    whatever happened."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run"] + list(args) + ["--sandbox", "--yes"],
        cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill(proc)
        proc.stdout.close()


def run_until(step, *args):
    """``runner_process(ARGS)`` killed right after STEP succeeded (it must get there)."""
    done = re.compile(r"^\s+%s\s+\S+\s+succeeded" % step)
    seen = []
    with runner_process(*args) as proc:
        for line in proc.stdout:
            seen.append(line)
            if done.match(line):
                kill(proc)
                break
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)


def kill(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def kill_once_it_writes(proc, image, settle=0.0):
    """Kill the runner once IMAGE (the copy it writes) exists, SETTLE seconds later."""
    deadline = time.monotonic() + 300
    while not image.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the copy never started"
        time.sleep(0.2)
    time.sleep(settle)
    kill(proc)


def approve_all(gate, params):
    return {"approved": True}


def runner(config, answer=approve_all, asked=None):
    def record(gate, params):
        if asked is not None:
            asked.append(gate)
        return answer(gate, params)
    return LocalRunner(config, answer=record, delay_scale=0.2)


@pytest.mark.parametrize("method", [None, "mirror"])
def test_migrate_volume_every_gate_approved_then_a_rerun_changes_nothing(
        settings, full_config, clouds, openstack_facts, method):
    """The pack's default copy method, then the runbook's (rbd-mirror)."""
    pools = settings.pools
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=256)
    asked = []
    chosen = {"method": method} if method else {}
    try:
        source_sum = source_sha(settings, volume.id)
        result = runner(full_config, asked=asked).run("ceph_migrate.migrate_volume",
                                                      volume_id=volume.id, **chosen)
        assert result.status == "succeeded", (result.errors, result.output)
        assert asked == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
        output = result.output
        assert output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
        assert output["plan"]["migration"]["method"] == (method or settings.copy_method)
        assert output["verified"]["verified"] is True
        if output["plan"]["migration"]["method"] == "mirror":
            assert output["verified"]["sha256"] == source_sum
        new_id = output["volume"]["volume_id"]
        dest = clouds["ct1-tenant"].block_storage.get_volume(new_id)
        tenant = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
        assert (dest.status, dest.project_id, dest.name) == ("available", tenant, volume.name)
        assert destination_sha(settings, pools.destination_cinder,
                               "volume-" + new_id) == source_sum
        source = settings.rbd(SOURCE).run("info", "%s/volume-%s" % (pools.mirrored_cinder,
                                                                    volume.id))
        assert "mirroring" not in source or source["mirroring"]["state"] == "disabled"
        assert settings.rbd(SOURCE).run("snap", "ls", "%s/volume-%s" % (
            pools.mirrored_cinder, volume.id)) == []

        before = (cloud_fingerprint(clouds), fingerprint(settings))
        again = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id,
                                        **chosen)
        assert again.status == "succeeded", again.output
        assert again.output["outcome"] == "already migrated as %s; nothing left to do" % new_id
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


def test_migrate_boot_volume_then_roll_it_back(settings, full_config, clouds, openstack_facts):
    pools = settings.pools
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=256, bootable=True)
    before = (cloud_fingerprint(clouds), fingerprint(settings))
    asked = []
    try:
        source_sum = source_sha(settings, volume.id)
        result = runner(full_config, asked=asked).run("ceph_migrate.migrate_boot_volume",
                                                      volume_id=volume.id)
        assert result.status == "succeeded", (result.errors, result.output)
        assert asked == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
        output = result.output
        assert output["outcome"].startswith("migrated, verified and cleaned up")
        image_id = output["uploaded"]["image_id"]
        assert output["registered"]["location"] == "rbd://%s/%s/%s/snap" % (
            settings.fsid(DESTINATION), pools.destination_glance, image_id)
        new_id = output["volume"]["volume_id"]
        dest = clouds["ct1-tenant"].block_storage.get_volume(new_id)
        assert dest.status == "available" and dest.is_bootable and dest.name == volume.name
        assert dest.project_id == openstack_facts["clouds"]["ct1"]["tenant_project_id"]
        clone = settings.rbd(DESTINATION).run("info", "%s/volume-%s" % (
            pools.destination_cinder, new_id))
        assert clone["parent"]["pool"] == pools.destination_glance       # copy-on-write
        assert destination_sha(settings, pools.destination_cinder,
                               "volume-" + new_id) == source_sum
        assert output["verified"]["sha256"] == source_sum
        assert [v.id for v in migrated(clouds, volume.id)] == [new_id]

        # rollback of the whole thing: the destination is clean, the source as it was
        rolled = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id,
                                         procedure="boot")
        assert rolled.status == "succeeded", (rolled.errors, rolled.output)
        assert "deleted the uploaded image" in rolled.output["undone"]
        wait_gone(clouds["ct1-admin"], new_id)
        assert eventually(lambda: (cloud_fingerprint(clouds), fingerprint(settings)) == before)
    finally:
        forget_migration(settings, full_config, clouds, volume.id)
        _forget_boot(settings, full_config, clouds, volume.id)


def test_an_in_use_volume_is_migrated_when_allowed(settings, full_config, clouds):
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=64)
    admin = clouds["pa1-admin"]
    try:
        attachment = admin.block_storage.create_attachment(
            volume.id, connector={"host": "compute-1", "ip": "127.0.0.1",
                                  "platform": "x86_64", "os_type": "linux",
                                  "multipath": False, "initiator": "iqn.test"},
            instance="11111111-2222-3333-4444-555555555555")
        admin.block_storage.complete_attachment(attachment)
        admin.block_storage.wait_for_status(volume, "in-use", interval=1, wait=60)
        refused = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id)
        assert refused.status == "failed"
        assert refused.output["outcome"] == "preflight failed, nothing was changed"
        result = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id,
                                         allow_in_use=True)
        assert result.status == "succeeded", (result.errors, result.output)
        new_id = result.output["volume"]["volume_id"]
        assert destination_sha(settings, settings.pools.destination_cinder,
                               "volume-" + new_id) == source_sha(settings, volume.id)
    finally:   # no Nova here to hear of a detach: reset the state instead
        admin.block_storage.reset_volume_status(volume.id, status="available",
                                                attach_status="detached", migration_status=None)
        forget_migration(settings, full_config, clouds, volume.id)


def test_a_batch_of_two(settings, full_config, clouds):
    """The local runner's batch (one volume after the other; StackStorm's side by side runs
    in test_stackstorm's batch of three)."""
    volumes = [create_source_volume(clouds, settings, size_gib=1, fill_mib=64)
               for _ in range(2)]
    ids = [v.id for v in volumes]
    try:
        sums = {v: source_sha(settings, v) for v in ids}
        result = runner(full_config).run("ceph_migrate.migrate_batch", volumes=ids,
                                         concurrency=2)
        assert result.status == "succeeded", (result.errors, result.output)
        assert result.output["outcome"] == "2 of 2 volumes done"
        assert result.output["migrated"] == ids
        for item in result.output["results"]:
            assert item["procedure"] == "data" and item["status"] == "succeeded"
            assert item["verified"]["verified"] is True
            new_id = item["volume"]["volume_id"]
            assert destination_sha(settings, settings.pools.destination_cinder,
                                   "volume-" + new_id) == sums[item["volume_id"]]
            assert [v.id for v in migrated(clouds, item["volume_id"])] == [new_id]
    finally:
        for volume_id in ids:
            forget_migration(settings, full_config, clouds, volume_id)


def test_a_run_killed_during_the_copy_finishes_on_a_rerun_without_duplicates(
        settings, full_config, clouds):
    pools = settings.pools
    volume = create_source_volume(clouds, settings, size_gib=2, fill_mib=1280)
    partial = settings.image(DESTINATION, pools.destination_cinder,
                             "volume-%s.ceph_migrate-partial" % volume.id)
    try:
        with runner_process("ceph_migrate.migrate_volume", "volume_id=" + volume.id,
                            "method=mirror") as proc:
            kill_once_it_writes(proc, partial)     # the runner and its rbd cp, mid-copy
        assert partial.exists()
        assert migrated(clouds, volume.id) == []

        result = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id,
                                         method="mirror")
        assert result.status == "succeeded", (result.errors, result.output)
        assert result.output["copied"]["removed_partial"] is True
        assert not partial.exists()
        new_id = result.output["volume"]["volume_id"]
        assert [v.id for v in migrated(clouds, volume.id)] == [new_id]
        assert destination_sha(settings, pools.destination_cinder,
                               "volume-" + new_id) == source_sha(settings, volume.id)
    finally:
        purge_image(settings, DESTINATION, pools.destination_cinder, partial.name)
        forget_migration(settings, full_config, clouds, volume.id)


def test_volumes_made_from_an_image_migrate_by_both_procedures_written_to_until_the_stop(
        settings, full_config, clouds):
    """In a Ceph-backed cloud a volume made from a Glance image is an RBD clone of it. The data
    procedure (export_diff) copies it flat while it is written to, and the writes made up to
    the tenant admin's approval arrive; the boot procedure uploads it flat through Cinder.
    The source volume stays a clone of its image, byte for byte as it was left."""
    pools = settings.pools
    tenant = clouds["pa1-tenant"]
    image = tenant.image.create_image(name="parent", disk_format="raw", container_format="bare",
                                      data=io.BytesIO(os.urandom(24 * 2 ** 20)))
    volumes = []
    try:
        for name in ("data-from-image", "boot-from-image"):
            volume = tenant.block_storage.create_volume(name=name, size=1,
                                                        image_id=image.id, volume_type="ceph")
            volumes.append(tenant.block_storage.wait_for_status(
                volume, "available", failures=["error"], interval=1, wait=120))
        data, boot = volumes
        spec = "%s/volume-%s" % (pools.mirrored_cinder, data.id)
        assert settings.rbd(SOURCE).run("info", spec)["parent"]["image"] == image.id

        def tenant_writes_until_the_stop(gate, params):
            if gate == "approve_cutover":
                write_random(settings, SOURCE, spec, 16, offset_mib=512)
            return {"approved": True}
        result = runner(full_config, answer=tenant_writes_until_the_stop).run(
            "ceph_migrate.migrate_volume", volume_id=data.id, method="export_diff")
        assert result.status == "succeeded", (result.errors, result.output)
        assert "a clone of osglance/%s@snap" % image.id in " ".join(
            result.output["plan"]["plan"]["stages"])
        assert result.output["verified"]["since"] is not None      # only the delta, inside
        made = migrated(clouds, data.id)
        assert [v.id for v in made] == [result.output["volume"]["volume_id"]]
        copy = "volume-" + made[0].id
        assert "parent" not in settings.rbd(DESTINATION).run(
            "info", "%s/%s" % (pools.destination_cinder, copy))
        assert destination_sha(settings, pools.destination_cinder, copy) == \
            source_sha(settings, data.id)
        assert settings.rbd(SOURCE).run("info", spec)["parent"]["image"] == image.id
        assert settings.rbd(SOURCE).run("snap", "ls", spec) == []       # the pack's are gone

        result = runner(full_config).run("ceph_migrate.migrate_boot_volume", volume_id=boot.id)
        assert result.status == "succeeded", (result.errors, result.output)
        made = migrated(clouds, boot.id)
        assert len(made) == 1 and made[0].is_bootable
        assert destination_sha(settings, pools.destination_cinder, "volume-" + made[0].id) == \
            source_sha(settings, boot.id)
    finally:
        for volume in volumes:
            forget_migration(settings, full_config, clouds, volume.id)
        if len(volumes) > 1:
            _forget_boot(settings, full_config, clouds, volumes[1].id)
        for volume in volumes:
            wait_gone(clouds["pa1-admin"], volume.id)
        delete_quietly(clouds["pa1-admin"], "image", image.id)


def test_an_export_diff_killed_mid_round_is_repaired_by_the_rerun(settings, full_config, clouds):
    """The runner and its rbd export-diff | import-diff killed while the first round writes
    the copy: the copy has no snapshot to continue from, so the re-run starts it over (it is
    provably the pack's) and ends with one volume, byte-identical, and no snapshot left."""
    pools = settings.pools
    volume = create_source_volume(clouds, settings, size_gib=2, fill_mib=1280)
    target = settings.image(DESTINATION, pools.destination_cinder, "volume-" + volume.id)
    try:
        with runner_process("ceph_migrate.migrate_volume", "volume_id=" + volume.id,
                            "method=export_diff") as proc:
            kill_once_it_writes(proc, target, settle=1)
        assert target.exists() and migrated(clouds, volume.id) == []
        assert settings.rbd(DESTINATION).run("snap", "ls", target.spec) == []   # not finished

        result = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id,
                                         method="export_diff")
        assert result.status == "succeeded", (result.errors, result.output)
        assert result.output["copied"]["rounds"][0]["started_over"] is True
        new_id = result.output["volume"]["volume_id"]
        assert [v.id for v in migrated(clouds, volume.id)] == [new_id]
        assert destination_sha(settings, pools.destination_cinder,
                               "volume-" + new_id) == source_sha(settings, volume.id)
        assert not target.exists()           # renamed by the manage
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


# every step that changes something, but the last (a gate only answers), in workflow order
KILL_POINTS = {
    "data": ("enable_mirroring", "wait_for_sync", "final_snapshot", "final_sync",
             "copy_replica", "verify_copy", "manage_volume", "disable_mirroring"),
    "boot": ("upload", "enable_mirroring", "copy_replica", "snapshot", "verify_copy",
             "register_image", "create_volume", "disable_mirroring"),
    "export_diff": ("presync", "verify_presync", "final_round", "verify_delta",
                    "drop_copy_snapshots", "manage_volume"),
}


@pytest.mark.parametrize("procedure", sorted(KILL_POINTS))
def test_a_run_killed_after_each_step_in_turn_finishes_with_nothing_lost_or_duplicated(
        settings, full_config, clouds, procedure):
    """The whole runner (and whatever rbd or API call it had started) killed right after the
    first step succeeded; re-run, killed right after the second; and so on through every step:
    each re-run resumes from where the one before was killed. The last run ends with one
    destination volume, byte-identical, the source kept and its mirroring off, no half copy,
    no second upload or registration."""
    pools = settings.pools
    boot = procedure == "boot"
    workflow = "ceph_migrate.migrate_boot_volume" if boot else "ceph_migrate.migrate_volume"
    method = {"data": {"method": "mirror"}, "export_diff": {"method": "export_diff"}}.get(
        procedure, {})
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=32, bootable=boot)
    try:
        for step in KILL_POINTS[procedure]:
            run_until(step, workflow, "volume_id=" + volume.id,
                      *["%s=%s" % kv for kv in method.items()])
            assert len(migrated(clouds, volume.id)) <= 1, step
        source_sum = source_sha(settings, volume.id)

        result = runner(full_config).run(workflow, volume_id=volume.id, **method)
        assert result.status == "succeeded", (result.errors, result.output)
        assert "migrated" in result.output["outcome"], result.output
        made = migrated(clouds, volume.id)
        assert len(made) == 1, made
        assert destination_sha(settings, pools.destination_cinder,
                               "volume-" + made[0].id) == source_sum
        if boot:
            uploads = _tagged_images(clouds["pa1-admin"], volume.id)
            assert len(uploads) == 1, uploads
            source = settings.image(SOURCE, pools.mirrored_glance, uploads[0])
            assert len(_tagged_images(clouds["ct1-admin"], uploads[0])) == 1
            pool, marker = pools.destination_glance, uploads[0]
        else:
            source = settings.image(SOURCE, pools.mirrored_cinder, "volume-" + volume.id)
            pool, marker = pools.destination_cinder, volume.id
        assert (source.info().get("mirroring") or {}).get("state", "disabled") == "disabled"
        # no sync snapshot left (an uploaded Glance image keeps Glance's own `snap`)
        assert [s["name"] for s in source.snapshots()
                if s["name"].startswith("ceph_migrate-sync-")] == []
        leftovers = [n for n in settings.rbd(DESTINATION).run("ls", pool) or []
                     if marker in n and n.endswith(".ceph_migrate-partial")]
        assert leftovers == [], leftovers
    finally:
        purge_image(settings, DESTINATION, pools.destination_cinder,
                    "volume-%s.ceph_migrate-partial" % volume.id)
        forget_migration(settings, full_config, clouds, volume.id)
        if boot:
            _forget_boot(settings, full_config, clouds, volume.id)


def _tagged_images(conn, source_id):
    return [i.id for i in conn.image.images()
            if (i.properties or {}).get(SOURCE_ID_KEY) == source_id]


def _forget_boot(settings, config, clouds, volume_id):
    """Test cleanup of a boot-volume migration: the destination volume and image, the upload's
    mirroring and the upload itself."""
    for image_id in _tagged_images(clouds["pa1-admin"], volume_id):
        run_action("rollback_destination", config, source_id=volume_id, source_image_id=image_id,
                   destination_project="tenant", delete_data=True)
        run_action("disable_mirroring", config, image=image_id,
                   pool=settings.pools.mirrored_glance, discard_replica=True)
        purge_image(settings, DESTINATION, settings.pools.destination_glance,
                    image_id + ".ceph_migrate-partial")
        delete_quietly(clouds["pa1-admin"], "image", image_id)


def test_dry_run_and_rejected_gates_change_nothing_and_rollback_restores_the_source(
        settings, full_config, clouds):
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=8)
    try:
        before = (cloud_fingerprint(clouds), fingerprint(settings))
        dry = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id,
                                      dry_run=True)
        assert dry.status == "succeeded" and dry.output["plan"]["ok"]
        assert dry.output["outcome"] == "dry run, nothing was changed"
        rejected = runner(full_config, answer=lambda g, p: {"approved": False}).run(
            "ceph_migrate.migrate_volume", volume_id=volume.id)
        assert rejected.status == "failed"
        assert "rejected by the Ceph admin" in rejected.output["outcome"]
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before

        # the tenant admin says no at the cutover: mirroring is on, the replica in sync
        at_cutover = runner(full_config, answer=lambda g, p: {
            "approved": g != "approve_cutover"}).run("ceph_migrate.migrate_volume",
                                                     volume_id=volume.id, mode="journal",
                                                     method="mirror")
        assert at_cutover.status == "failed"
        assert "rejected by the tenant admin" in at_cutover.output["outcome"]
        assert (cloud_fingerprint(clouds), fingerprint(settings)) != before
        plan = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id,
                                       dry_run=True)
        assert plan.status == "succeeded" and len(plan.output["plan"]["undo"]) >= 2
        rolled = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id)
        assert rolled.status == "succeeded", (rolled.errors, rolled.output)
        assert "disabled mirroring" in rolled.output["undone"]
        assert eventually(lambda: (cloud_fingerprint(clouds), fingerprint(settings)) == before)
        again = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id)
        assert again.status == "succeeded" and again.output["undone"] == []
    finally:
        forget_migration(settings, full_config, clouds, volume.id)
