"""Placement promote end to end: the real workflow (local runner), the real actions, the two
real clouds on the real Ceph pair with rbd-mirror; the destination Cinder serves the mirrored
pool with a second backend (the sandbox's `ceph-mirrored` type)."""
import pytest

from ceph_env import fingerprint, write_random
from lib.rbd_image import META_COPY_OF, META_PROMOTED, META_VERIFIED
from lib.settings import DESTINATION, SOURCE
from openstack_env import (cloud_fingerprint, create_source_volume, destination_sha,
                           forget_migration, migrated, source_sha)
from test_e2e_workflows import run_until, runner

PROMOTE = {"placement": "promote"}


def _mirroring(image):
    return (image.info().get("mirroring") or {}).get("state", "disabled")


def _assert_released(settings, volume_id, new_id, source_sum):
    """The destination volume is the promoted replica, in the mirrored pool, byte-identical;
    both sides are plain images (mirroring off, no snapshot), the source writable again."""
    pool = settings.pools.mirrored_cinder
    dest = settings.image(DESTINATION, pool, "volume-" + new_id)
    source = settings.image(SOURCE, pool, "volume-" + volume_id)
    assert destination_sha(settings, pool, dest.name) == source_sum
    assert _mirroring(dest) == _mirroring(source) == "disabled"
    assert dest.snapshots() == [] and source.snapshots() == []
    assert META_PROMOTED not in source.metadata()
    assert dest.recorded(META_VERIFIED)["sha256"] == source_sum
    assert dest.recorded(META_COPY_OF)["source"].endswith("%s/volume-%s" % (pool, volume_id))
    # nothing was copied into the destination Cinder pool
    assert not settings.image(DESTINATION, settings.pools.destination_cinder,
                              "volume-" + new_id).exists()


def test_promote_every_gate_approved_then_a_rerun_changes_nothing(
        settings, full_config, clouds, openstack_facts):
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=64)
    asked = []
    try:
        source_sum = source_sha(settings, volume.id)
        result = runner(full_config, asked=asked).run("ceph_migrate.migrate_volume",
                                                      volume_id=volume.id, **PROMOTE)
        assert result.status == "succeeded", (result.errors, result.output)
        assert asked == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
        output = result.output
        assert output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
        migration = output["plan"]["migration"]
        assert (migration["method"], migration["placement"]) == ("mirror", "promote")
        assert migration["destination_pool"] == settings.pools.mirrored_cinder
        assert any("promote the replica" in s for s in output["plan"]["plan"]["stages"])
        assert output["verified"]["sha256"] == source_sum
        new_id = output["volume"]["volume_id"]
        assert output["volume"]["rbd_image"] == "%s/volume-%s" % (
            settings.pools.mirrored_cinder, new_id)
        dest = clouds["ct1-tenant"].block_storage.get_volume(new_id)
        tenant = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
        in_place = openstack_facts["clouds"]["ct1"]["cinder"]["in_place"]
        assert (dest.status, dest.project_id, dest.name, dest.volume_type) == (
            "available", tenant, volume.name, in_place["volume_type"])
        _assert_released(settings, volume.id, new_id, source_sum)

        before = (cloud_fingerprint(clouds), fingerprint(settings))
        again = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id,
                                        **PROMOTE)
        assert again.status == "succeeded", again.output
        assert again.output["outcome"] == "already migrated as %s; nothing left to do" % new_id
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


def test_promote_with_the_cleanup_declined_is_rolled_back_to_the_source_as_it_was(
        settings, full_config, clouds):
    """Cleanup declined: the destination volume is in use-able, the source demoted and read-only;
    the rollback deletes the destination volume, promotes the source again and leaves it
    exactly as before the migration."""
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=16)
    source = settings.image(SOURCE, settings.pools.mirrored_cinder, "volume-" + volume.id)
    try:
        before = fingerprint(settings)["%s:%s" % (SOURCE, source.spec)]
        declined = runner(full_config, answer=lambda gate, params: {
            "approved": gate != "approve_cleanup"}).run(
            "ceph_migrate.migrate_volume", volume_id=volume.id, **PROMOTE)
        assert declined.status == "succeeded", (declined.errors, declined.output)
        assert declined.output["outcome"] == ("migrated and verified; cleanup declined, "
                                              "mirroring left on, the source demoted (read-only)")
        assert source.info()["mirroring"]["primary"] is False
        assert source.recorded(META_PROMOTED)
        assert len(migrated(clouds, volume.id)) == 1

        plan = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id,
                                       procedure="data", dry_run=True)
        assert any("promote" in u for u in plan.output["plan"]["undo"]), plan.output
        undone = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id,
                                         procedure="data")
        assert undone.status == "succeeded", (undone.errors, undone.output)
        assert undone.output["outcome"] == "rolled back; the source is as it was before the " \
                                           "migration"
        assert migrated(clouds, volume.id) == []
        assert fingerprint(settings)["%s:%s" % (SOURCE, source.spec)] == before
        assert not settings.image(DESTINATION, settings.pools.mirrored_cinder,
                                  source.name).exists()
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


@pytest.mark.parametrize("step", ["promote", "manage_volume", "verify_in_place"])
def test_promote_killed_after_a_step_finishes_on_a_rerun(settings, full_config, clouds, step):
    """The runner killed right after STEP (the source is demoted from `promote` on; a kill
    before it re-runs the mirror method's path, tested with the copy placement): the re-run
    finishes without asking again for the gates that run passed, one volume, byte-identical."""
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=16)
    try:
        _run_until(volume.id, step)
        source_sum = source_sha(settings, volume.id)
        asked = []
        result = runner(full_config, asked=asked).run("ceph_migrate.migrate_volume",
                                                      volume_id=volume.id, **PROMOTE)
        assert result.status == "succeeded", (result.errors, result.output)
        assert result.output["outcome"] == ("migrated, verified and cleaned up; the source "
                                            "image is kept")
        # gates passed by the killed run are not asked again once the source was demoted
        assert asked == ["approve_cleanup"]
        made = migrated(clouds, volume.id)
        assert len(made) == 1, made
        _assert_released(settings, volume.id, made[0].id, source_sum)
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


def _run_until(volume_id, step):
    """The runner as a user starts it with placement=promote, killed right after STEP."""
    run_until(step, "ceph_migrate.migrate_volume", "volume_id=" + volume_id,
              "placement=promote")


def test_promoted_but_not_managed_is_rolled_back_without_a_split_brain(
        settings, full_config, clouds):
    """Killed right after the promotion: the rollback removes the promoted replica (the pack's,
    never managed) before it promotes the source again, so nothing is left at the destination
    and the source is as it was."""
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=16)
    pool = settings.pools.mirrored_cinder
    source = settings.image(SOURCE, pool, "volume-" + volume.id)
    replica = settings.image(DESTINATION, pool, source.name)
    try:
        before = fingerprint(settings)["%s:%s" % (SOURCE, source.spec)]
        _run_until(volume.id, "promote")
        assert replica.info()["mirroring"]["primary"] is True
        assert source.info()["mirroring"]["primary"] is False
        undone = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id,
                                         procedure="data")
        assert undone.status == "succeeded", (undone.errors, undone.output)
        assert "removed the copy %s" % replica.spec in undone.output["undone"]
        assert not replica.exists()
        assert fingerprint(settings)["%s:%s" % (SOURCE, source.spec)] == before
        assert migrated(clouds, volume.id) == []
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


def test_a_promoted_replica_that_differs_from_the_source_is_caught_and_nothing_released(
        settings, full_config, clouds):
    """A byte changed in the promoted replica before its check snapshot (as a replica that
    silently missed a write would be): verify_in_place fails, the source stays demoted, the
    cleanup is never reached; the rollback then restores the source."""
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=16)
    pool = settings.pools.mirrored_cinder
    source = settings.image(SOURCE, pool, "volume-" + volume.id)
    replica = settings.image(DESTINATION, pool, source.name)
    try:
        _run_until(volume.id, "promote")
        snap = "%s@ceph_migrate-verify" % replica.spec
        settings.rbd(DESTINATION).run_text("snap", "rm", "--no-progress", snap)
        write_random(settings, DESTINATION, replica.spec, mib=1, offset_mib=2)
        settings.rbd(DESTINATION).run_text("snap", "create", snap)
        result = runner(full_config).run("ceph_migrate.migrate_volume", volume_id=volume.id,
                                         **PROMOTE)
        assert result.status == "failed"
        assert result.output["failed_at"] == "verify_in_place", result.output
        assert "content differs" in result.output["outcome"]
        assert "the source stays demoted" in result.output["outcome"]
        assert source.info()["mirroring"]["primary"] is False
        assert any("demoted" in line for line in result.output["left_changed"])
        assert "rollback" in result.output["undo"]
        undone = runner(full_config).run("ceph_migrate.rollback", volume_id=volume.id,
                                         procedure="data")
        assert undone.status == "succeeded", (undone.errors, undone.output)
        assert migrated(clouds, volume.id) == []
        assert (source.info().get("mirroring") or {}).get("state", "disabled") == "disabled"
    finally:
        forget_migration(settings, full_config, clouds, volume.id)
