"""The whole Ceph stage of the runbook on two real clusters with a real rbd-mirror daemon,
through the pack's actions, in both mirror modes; then every step again changes nothing."""
import time

import pytest

from ceph_env import create_volume, new_volume_id, purge_image, run_action, write_random
from lib.settings import DESTINATION, SOURCE
from openstack_env import eventually

SIZE_MIB = 256


def sha(settings, side, pool, image):
    return settings.rbd(side).export_sha256("%s/%s" % (pool, image), timeout=600)


def assert_unchanged(run):
    assert run.ok, run.result
    assert run.result["changed"] is False, run.result


@pytest.mark.parametrize("mode", ["snapshot", "journal"])
def test_ceph_stage_end_to_end(mode, settings, ceph_config, caplog):
    config = dict(ceph_config, mirror_mode=mode, copy=dict(ceph_config.get("copy") or {},
                                                           method="mirror"))
    pools = settings.pools
    vid = create_volume(settings, SIZE_MIB)
    image = "volume-" + vid
    spec = "%s/%s" % (pools.mirrored_cinder, image)
    source = settings.rbd(SOURCE)
    if mode == "journal":
        # start from layering only: cleanup must give back exactly this feature set
        source.run_text("feature", "disable", spec, "deep-flatten", "fast-diff", "object-map",
                        "exclusive-lock")
    features_before = source.run("info", spec)["features"]
    try:
        plan = run_action("plan_volume_migration", config, volume_id=vid)
        assert plan.ok, plan.result
        assert plan.result["plan"]["mode"] == mode
        # no clouds configured: the migration value names the Ceph side only
        assert plan.result["migration"] == {
            "procedure": "data", "volume_id": vid, "volume": None, "destination_project": None,
            "mode": mode, "mirrored_pool": pools.mirrored_cinder,
            "destination_pool": pools.destination_cinder, "image": image,
            "destination_image": image, "method": "mirror",
            "placement": "copy"}

        if mode == "journal":
            added = run_action("enable_journal_features", config, image=image)
            assert added.ok and added.result["changed"], added.result
            assert added.result["added"] == ["exclusive-lock", "journaling"]
            assert_unchanged(run_action("enable_journal_features", config, image=image))

        enabled = run_action("enable_mirroring", config, image=image)
        assert enabled.ok and enabled.result["changed"] and enabled.result["mode"] == mode
        assert_unchanged(run_action("enable_mirroring", config, image=image))

        synced = run_action("wait_for_sync", config, image=image, timeout_seconds=300)
        assert synced.ok and synced.result["in_sync"], synced.result

        # more writes after the initial sync; the 30 s status would still say "in sync"
        write_random(settings, SOURCE, spec, mib=64, offset_mib=96)
        if mode == "snapshot":
            snap = run_action("mirror_snapshot", config, image=image)
            assert snap.ok and snap.result["snapshot_id"], snap.result
        else:
            pending = run_action("mirror_status", config, image=image)
            assert pending.ok, pending.result
        synced = run_action("wait_for_sync", config, image=image, timeout_seconds=300)
        assert synced.ok and synced.result["in_sync"], synced.result
        # right when the wait says so, the replica already holds the new bytes
        assert sha(settings, SOURCE, pools.mirrored_cinder, image) == \
            sha(settings, DESTINATION, pools.mirrored_cinder, image)
        status = run_action("mirror_status", config, image=image)
        assert status.ok and status.result["in_sync"] and status.result["mode"] == mode

        caplog.set_level("INFO")
        copied = run_action("copy_replica", config, image=image)
        assert copied.ok and copied.result["changed"], copied.result
        assert "copy %s/%s: 100%%" % (pools.destination_cinder, image) in caplog.text
        assert "journaling" not in copied.result["target"]["features"]
        assert_unchanged(run_action("copy_replica", config, image=image))

        refused = run_action("disable_mirroring", config, image=image)
        assert not refused.ok and "verified copy" in refused.result["error"]

        verified = run_action("verify_copy", config, image=image)
        assert verified.ok and verified.result["verified"] and verified.result["changed"]
        assert "verify %s: 100%%" % spec in caplog.text
        assert verified.result["bytes"] == SIZE_MIB * 1024 * 1024
        assert verified.result["sha256"] == sha(settings, DESTINATION,
                                                pools.destination_cinder, image)[0]
        assert_unchanged(run_action("verify_copy", config, image=image))

        disabled = run_action("disable_mirroring", config, image=image)
        assert disabled.ok and disabled.result["changed"], disabled.result
        assert_unchanged(run_action("disable_mirroring", config, image=image))
        replica = settings.image(DESTINATION, pools.mirrored_cinder, image)
        deadline = time.monotonic() + 30
        while replica.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not replica.exists(), "rbd-mirror kept the replica after mirroring was disabled"

        restored = run_action("restore_features", config, image=image)
        assert restored.ok, restored.result
        assert source.run("info", spec)["features"] == features_before
        assert_unchanged(run_action("restore_features", config, image=image))

        # the copy outlives the replica, and the source is untouched
        assert sha(settings, DESTINATION, pools.destination_cinder, image)[0] == \
            verified.result["sha256"]
        assert sha(settings, SOURCE, pools.mirrored_cinder, image)[0] == verified.result["sha256"]
        info = run_action("image_info", config, image=image)
        assert info.ok and info.result["mirroring"]["state"] == "disabled"
        assert "ceph_migrate.verified" in info.result["records"]
    finally:
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)
        purge_image(settings, DESTINATION, pools.destination_cinder, image)


@pytest.mark.parametrize("mode", ["snapshot", "journal"])
def test_planned_failover_round(mode, settings, ceph_config):
    """demote at the source, promote at the destination (no --force), each only once."""
    config = dict(ceph_config, mirror_mode=mode, copy=dict(ceph_config.get("copy") or {},
                                                           method="mirror"))
    pools = settings.pools
    vid = create_volume(settings, 64)
    image = "volume-" + vid
    try:
        assert run_action("enable_mirroring", config, image=image).ok
        assert run_action("wait_for_sync", config, image=image, timeout_seconds=300).ok
        # a planned failover demotes once rbd-mirror replays the image steadily: a demotion
        # written while its journal replayer is still starting was seen to take over 120 s to
        # reach the destination in two clean-clone runs
        replaying = eventually(lambda: "replaying" in (settings.rbd(DESTINATION).run(
            "mirror", "image", "status", "%s/%s" % (pools.mirrored_cinder, image)) or {}).get(
                "state", ""), timeout=120)
        assert replaying, "rbd-mirror never reported the replica replaying"
        demoted = run_action("demote_image", config, image=image)
        assert demoted.ok and demoted.result["changed"], demoted.result
        assert_unchanged(run_action("demote_image", config, image=image))
        promoted = run_action("promote_image", config, image=image, wait_seconds=300)
        assert promoted.ok and promoted.result["changed"] and not promoted.result["forced"]
        assert_unchanged(run_action("promote_image", config, image=image))
        dest_info = run_action("image_info", config, image=image, cluster="destination")
        assert dest_info.result["mirroring"]["primary"] is True
        src_info = run_action("image_info", config, image=image)
        assert src_info.result["mirroring"]["primary"] is False
        assert sha(settings, SOURCE, pools.mirrored_cinder, image) == \
            sha(settings, DESTINATION, pools.mirrored_cinder, image)
    finally:
        purge_image(settings, DESTINATION, pools.mirrored_cinder, image)
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)


def test_glance_pool_stage(settings, ceph_config):
    """Procedure 2's Ceph part: a pool-mode pool mirrors journaled images; the copy in the
    destination Glance pool gets the protected ``snap`` Glance serves."""
    pools = settings.pools
    image = new_volume_id()                    # Glance names RBD images by the image id
    spec = "%s/%s" % (pools.mirrored_glance, image)
    source = settings.rbd(SOURCE)
    source.run_text("create", spec, "--size", "64M")
    write_random(settings, SOURCE, spec, mib=64)
    source.run_text("snap", "create", spec + "@snap")
    source.run_text("snap", "protect", spec + "@snap")
    features_before = source.run("info", spec)["features"]
    common = dict(image=image, pool=pools.mirrored_glance)
    to_glance = dict(common, destination_pool=pools.destination_glance)
    try:
        refused = run_action("enable_mirroring", ceph_config, mode="snapshot", **common)
        assert not refused.ok and "pool mode" in refused.result["error"]
        enabled = run_action("enable_mirroring", ceph_config, mode="journal", **common)
        assert enabled.ok and enabled.result["added_features"] == ["journaling"], enabled.result
        assert_unchanged(run_action("enable_mirroring", ceph_config, mode="journal", **common))
        synced = run_action("wait_for_sync", ceph_config, timeout_seconds=300, **common)
        assert synced.ok and synced.result["mode"] == "journal", synced.result
        assert run_action("copy_replica", ceph_config, **to_glance).result["changed"]
        snap = run_action("create_snapshot", ceph_config, image=image,
                          pool=pools.destination_glance)
        assert snap.ok and snap.result["changed"] and snap.result["protected"]
        assert_unchanged(run_action("create_snapshot", ceph_config, image=image,
                                    pool=pools.destination_glance))
        assert run_action("verify_copy", ceph_config, **to_glance).ok
        disabled = run_action("disable_mirroring", ceph_config, **common)
        assert disabled.ok and disabled.result["pool_mode"] == "pool", disabled.result
        assert run_action("restore_features", ceph_config, **common).ok
        assert source.run("info", spec)["features"] == features_before
        replica = settings.image(DESTINATION, pools.mirrored_glance, image)
        deadline = time.monotonic() + 30
        while replica.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not replica.exists()
        copy_snaps = settings.rbd(DESTINATION).run(
            "snap", "ls", "%s/%s" % (pools.destination_glance, image))
        assert [(s["name"], s["protected"]) for s in copy_snaps] == [("snap", "true")]
    finally:
        purge_image(settings, SOURCE, pools.mirrored_glance, image)
        purge_image(settings, DESTINATION, pools.destination_glance, image)


def test_remove_copy_removes_the_packs_copies_and_nothing_else(settings, ceph_config):
    """Ownership from the pack's own records, never from a name: a partial image nobody
    recorded is neither overwritten by copy_replica nor removed by the rollback; the pack's
    copy (with its protected snapshot) and the partial a killed copy recorded both go; an
    image of the same kind the pack did not make, or a copy of another replica, is refused."""
    pools = settings.pools
    dest = settings.rbd(DESTINATION)
    vid = create_volume(settings, 32)
    image = "volume-" + vid
    other = "volume-" + new_volume_id()
    stranger = "volume-" + new_volume_id()
    partial = settings.image(DESTINATION, pools.destination_cinder, image + ".ceph_migrate-partial")
    try:
        for step in ("enable_mirroring", "wait_for_sync"):
            assert run_action(step, ceph_config, image=image).ok
        dest.run_text("create", partial.spec, "--size", "4M")
        refused = run_action("copy_replica", ceph_config, image=image)
        assert not refused.ok and "no record of ceph_migrate" in refused.result["error"]
        assert partial.exists() and not partial.metadata()
        dest.run_text("rm", "--no-progress", partial.spec)
        assert run_action("copy_replica", ceph_config, image=image).ok
        assert run_action("create_snapshot", ceph_config, image=image,
                          pool=pools.destination_cinder).ok
        dest.run_text("create", partial.spec, "--size", "4M")
        dest.run_text("create", "%s/%s" % (pools.destination_cinder, stranger), "--size", "4M")

        refused = run_action("remove_copy", ceph_config, image=stranger)
        assert not refused.ok and "not a copy made by ceph_migrate" in refused.result["error"]
        assert settings.image(DESTINATION, pools.destination_cinder, stranger).exists()
        refused = run_action("remove_copy", ceph_config, image=image, source_image=other)
        assert not refused.ok and "is a copy of" in refused.result["error"]

        removed = run_action("remove_copy", ceph_config, image=image)
        assert removed.ok, removed.result
        assert removed.result["removed"] == ["%s/%s" % (pools.destination_cinder, image)]
        assert removed.result["kept"][0].startswith(partial.spec + " (no record")
        assert partial.exists()
        # what a copy killed mid-way leaves: its partial named on the source it copies
        source = settings.image(SOURCE, pools.mirrored_cinder, image)
        source.record("ceph_migrate.copying", "%s:%s" % (dest.cluster.name, partial.spec))
        removed = run_action("remove_copy", ceph_config, image=image)
        assert removed.ok and removed.result["removed"] == [partial.spec], removed.result
        names = dest.run("ls", pools.destination_cinder) or []
        assert image not in names and partial.name not in names
        assert run_action("remove_copy", ceph_config, image=image).result["changed"] is False
        # the source and its replica are untouched by it
        assert source.exists()
        assert settings.image(DESTINATION, pools.mirrored_cinder, image).exists()
    finally:
        run_action("disable_mirroring", ceph_config, image=image, discard_replica=True)
        for name in (image, partial.name, stranger):
            purge_image(settings, DESTINATION, pools.destination_cinder, name)
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)
