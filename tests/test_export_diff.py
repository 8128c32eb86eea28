"""The export_diff method's steps on two real clusters: a clone of an image copied flat while it
is written to, only the delta after the last pre-copy round inside the cutover, the checks that
catch a copy changed behind the pack's back, and snapshots that only ever the pack's go."""
import pytest

from ceph_env import (create_volume, fingerprint, new_volume_id, purge_image, run_action,
                      write_random)
from lib.settings import DESTINATION, SOURCE

SIZE_MIB = 256


def sha(settings, side, spec):
    return settings.rbd(side).export_sha256(spec, timeout=600)


def snaps(settings, side, spec):
    return sorted(s["name"] for s in settings.rbd(side).run("snap", "ls", spec) or [])


@pytest.fixture
def clone(settings):
    """volume-<id> in the source Cinder pool, a clone of an image in the source Glance pool
    (how Cinder makes a volume from a Glance image on Ceph), with writes of its own."""
    pools, rbd = settings.pools, settings.rbd(SOURCE)
    parent = "image-" + new_volume_id()
    vid = new_volume_id()
    parent_spec = "%s/%s" % (pools.mirrored_glance, parent)
    rbd.run_text("create", parent_spec, "--size", "%dM" % SIZE_MIB)
    write_random(settings, SOURCE, parent_spec, 48)
    rbd.run_text("snap", "create", parent_spec + "@snap")
    rbd.run_text("snap", "protect", parent_spec + "@snap")
    rbd.run_text("clone", parent_spec + "@snap", "%s/volume-%s" % (pools.mirrored_cinder, vid))
    write_random(settings, SOURCE, "%s/volume-%s" % (pools.mirrored_cinder, vid), 8,
                 offset_mib=100)
    yield vid, parent_spec
    purge_image(settings, DESTINATION, pools.destination_cinder, "volume-" + vid)
    purge_image(settings, SOURCE, pools.mirrored_cinder, "volume-" + vid)
    purge_image(settings, SOURCE, pools.mirrored_glance, parent)


def test_a_clone_arrives_flat_with_every_write_and_the_source_unchanged(
        settings, ceph_config, clone):
    vid, parent_spec = clone
    pools = settings.pools
    image = "volume-" + vid
    source_spec = "%s/%s" % (pools.mirrored_cinder, image)
    copy_spec = "%s/%s" % (pools.destination_cinder, image)
    features = settings.rbd(SOURCE).run("info", source_spec)["features"]

    plan = run_action("plan_volume_migration", ceph_config, volume_id=vid, method="export_diff")
    assert plan.ok, plan.result
    assert "a clone of %s" % parent_spec in " ".join(plan.result["plan"]["stages"])
    assert plan.result["migration"]["method"] == "export_diff"

    first = run_action("sync_image", ceph_config, image=image)
    assert first.ok, first.result
    rounds = first.result["rounds"]
    # the parent's 48 MiB and the clone's 8 MiB, not the 256 MiB provisioned
    assert 56 * 2 ** 20 <= rounds[0]["bytes"] < 80 * 2 ** 20, rounds
    assert rounds[0]["base"] is None and len(rounds) == 1      # nobody writes: one round
    full = run_action("verify_sync", ceph_config, image=image, full=True)
    assert full.ok and full.result["since"] is None, full.result
    assert full.result["source_read_again"] is False   # its side was hashed as it crossed

    # the tenant still writes after the pre-copy; then stops: only that crosses in the window
    write_random(settings, SOURCE, source_spec, 16, offset_mib=200)
    final = run_action("sync_image", ceph_config, image=image, final=True)
    assert final.ok, final.result
    assert final.result["base"] == full.result["snapshot"]
    assert 16 * 2 ** 20 <= final.result["bytes"] < 24 * 2 ** 20, final.result
    delta = run_action("verify_sync", ceph_config, image=image, full=False)
    assert delta.ok, delta.result
    assert delta.result["since"] == full.result["snapshot"]
    assert delta.result["source_read_again"] is False
    assert delta.result["hashed_bytes"] < 24 * 2 ** 20        # the copy's delta only
    again = run_action("verify_sync", ceph_config, image=image, full=False)
    assert again.ok and again.result["changed"] is False

    copy_info = settings.rbd(DESTINATION).run("info", copy_spec)
    assert "parent" not in copy_info                               # flat
    assert sha(settings, DESTINATION, copy_spec) == sha(settings, SOURCE, source_spec)
    source_info = settings.rbd(SOURCE).run("info", source_spec)
    assert source_info["parent"]["image"] == parent_spec.split("/")[1]   # still a clone
    assert source_info["features"] == features
    assert (source_info.get("mirroring") or {}).get("state", "disabled") == "disabled"

    dropped = run_action("drop_sync_snapshots", ceph_config, image=image, side="destination")
    assert dropped.ok and dropped.result["removed"], dropped.result
    assert snaps(settings, DESTINATION, copy_spec) == []
    settings.rbd(SOURCE).run_text("snap", "create", source_spec + "@tenants-own")
    cleaned = run_action("drop_sync_snapshots", ceph_config, image=image, side="source")
    assert cleaned.ok and cleaned.result["changed"] is True
    assert snaps(settings, SOURCE, source_spec) == ["tenants-own"]   # only the pack's went
    assert run_action("drop_sync_snapshots", ceph_config, image=image,
                      side="source").result["changed"] is False
    settings.rbd(SOURCE).run_text("snap", "rm", source_spec + "@tenants-own")


def test_a_copy_changed_behind_the_packs_back_is_caught_inside_the_window(settings,
                                                                          ceph_config):
    pools = settings.pools
    vid = create_volume(settings, 128, fill_mib=32)
    image = "volume-" + vid
    copy_spec = "%s/%s" % (pools.destination_cinder, image)
    try:
        assert run_action("sync_image", ceph_config, image=image).ok
        assert run_action("verify_sync", ceph_config, image=image).ok
        # after the verified pre-copy, something else writes into the copy
        write_random(settings, DESTINATION, copy_spec, 1, offset_mib=64)
        write_random(settings, SOURCE, "%s/%s" % (pools.mirrored_cinder, image), 4)
        assert run_action("sync_image", ceph_config, image=image, final=True).ok
        delta = run_action("verify_sync", ceph_config, image=image, full=False)
        assert not delta.ok
        assert delta.result["error_type"] == "VerificationFailed"
        assert "the changes since ceph_migrate-sync-" in delta.result["error"]
        assert "nothing is cleaned up" in delta.result["error"]
        # the full check says the same; the record of the last good check is not moved on
        assert not run_action("verify_sync", ceph_config, image=image, full=True).ok
        source = settings.image(SOURCE, pools.mirrored_cinder, image)
        copy = settings.image(DESTINATION, pools.destination_cinder, image)
        refused = run_action("remove_image", ceph_config, image=image)
        assert not refused.ok and source.exists() and copy.exists()
    finally:
        purge_image(settings, DESTINATION, pools.destination_cinder, image)
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)


def test_a_name_taken_by_something_else_is_refused_before_anything_changes(settings,
                                                                           ceph_config):
    pools = settings.pools
    vid = create_volume(settings, 64, fill_mib=4)
    image = "volume-" + vid
    settings.rbd(DESTINATION).run_text("create", "%s/%s" % (pools.destination_cinder, image),
                                       "--size", "64M")
    try:
        before = fingerprint(settings)
        refused = run_action("sync_image", ceph_config, image=image)
        assert not refused.ok
        assert "is not the pack's copy" in refused.result["error"]
        assert fingerprint(settings) == before
    finally:
        purge_image(settings, DESTINATION, pools.destination_cinder, image)
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)


def test_a_verification_of_an_earlier_copy_under_the_same_names_is_not_taken(
        settings, ceph_config):
    """Snapshot names start again at 1 once the pack's snapshots are gone; a record of a
    verified copy that was removed since (by hand) must not pass a new copy unchecked."""
    pools = settings.pools
    vid = create_volume(settings, 64, fill_mib=8)
    image = "volume-" + vid
    try:
        assert run_action("sync_image", ceph_config, image=image, max_rounds=1).ok
        first = run_action("verify_sync", ceph_config, image=image)
        assert first.ok and first.result["changed"] is True
        purge_image(settings, DESTINATION, pools.destination_cinder, image)
        assert run_action("drop_sync_snapshots", ceph_config, image=image, side="source").ok
        again = run_action("sync_image", ceph_config, image=image, max_rounds=1)
        assert again.ok and again.result["snapshot"] == first.result["snapshot"]  # same name
        checked = run_action("verify_sync", ceph_config, image=image)
        assert checked.ok and checked.result["changed"] is True     # hashed again, not taken
        assert checked.result["hashed_bytes"] > 0
        # the verified copy is what releasing the source needs (once the snapshots are gone)
        refused = run_action("remove_image", ceph_config, image=image)
        assert not refused.ok and "has snapshots" in refused.result["error"]
        for side in ("destination", "source"):
            assert run_action("drop_sync_snapshots", ceph_config, image=image, side=side).ok
        released = run_action("remove_image", ceph_config, image=image)
        assert released.ok and released.result["removed"], released.result
        assert settings.image(DESTINATION, pools.destination_cinder, image).exists()
    finally:
        purge_image(settings, DESTINATION, pools.destination_cinder, image)
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)
