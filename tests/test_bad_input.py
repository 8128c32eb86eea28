"""Bad input and refused steps: a clear error, and nothing changed on either cluster."""
import pytest

from ceph_env import (create_volume, fingerprint, new_volume_id, purge_image, run_action,
                      run_unchecked)
from lib.settings import DESTINATION, SOURCE
from runner.actions import ParameterError, action_metadata, check_call

EVIL = ["a b", "../../etc/passwd", "x;rm -rf /", "$(reboot)", "`id`", "-rf", "--cluster=x",
        "oscinder/../x", "img@snap", "name\nnewline", "a|b", "a&&b", ".."]

IMAGE_ACTIONS = ["image_info", "enable_journal_features", "restore_features", "enable_mirroring",
                 "disable_mirroring", "mirror_snapshot", "mirror_status", "wait_for_sync",
                 "demote_image", "promote_image", "copy_replica", "verify_copy", "remove_image",
                 "remove_copy"]


@pytest.fixture
def unchanged(settings):
    """Assert that the test leaves both clusters exactly as it found them."""
    before = fingerprint(settings)
    yield
    assert fingerprint(settings) == before


def refused(action, config, error_type, words="", **params):
    """Refused twice over: by StackStorm before the action runs (the parameter's pattern, the
    message naming the parameter), and by the pack's own check when called anyway."""
    with pytest.raises(ParameterError) as st2_refusal:
        check_call(action_metadata("ceph_migrate." + action), params)
    assert st2_refusal.value.parameter in params, st2_refusal.value
    return expect_error(run_unchecked(action, config, **params), error_type, words)


def expect_error(run, error_type, words=""):
    assert run.ok is False, run.result
    assert run.result["error_type"] == error_type, run.result
    assert words in run.result["error"], run.result
    return run.result["error"]


@pytest.mark.parametrize("action", IMAGE_ACTIONS)
def test_malformed_image_names_are_refused_before_any_call(action, ceph_config, unchanged):
    for bad in EVIL:
        refused(action, ceph_config, "InvalidName", "not allowed", image=bad)


@pytest.mark.parametrize("action", ["enable_mirroring", "copy_replica", "remove_image"])
def test_malformed_pool_names_are_refused(action, ceph_config, unchanged):
    for bad in EVIL:
        refused(action, ceph_config, "InvalidName", image="volume-x", pool=bad)


def test_malformed_destination_and_snapshot_names(ceph_config, unchanged):
    for bad in EVIL:
        refused("copy_replica", ceph_config, "InvalidName", image="volume-x",
                destination_image=bad)
        refused("create_snapshot", ceph_config, "InvalidName", image="volume-x",
                pool="glance-ct1-cl1", snapshot=bad)
        for action in ("plan_volume_migration", "plan_rollback"):
            refused(action, ceph_config, "InvalidName", volume_id=bad)


def test_missing_image(ceph_config, unchanged):
    image = "volume-" + new_volume_id()
    for action in ("enable_mirroring", "enable_journal_features", "mirror_snapshot",
                   "demote_image", "image_info"):
        expect_error(run_action(action, ceph_config, image=image), "NotFound", "does not exist")
    expect_error(run_action("copy_replica", ceph_config, image=image), "NotFound")
    plan = run_action("plan_volume_migration", ceph_config, volume_id=image[len("volume-"):])
    assert not plan.ok and not plan.result["ok"]
    failed = [c["check"] for c in plan.result["checks"] if not c["ok"]]
    assert failed == ["source image exists"], plan.result["checks"]


def test_missing_pool(ceph_config, unchanged):
    expect_error(run_action("enable_mirroring", ceph_config, image="volume-x", pool="nopool"),
                 "PoolNotFound", "pool 'nopool' does not exist")
    expect_error(run_action("image_info", ceph_config, image="volume-x", pool="nopool",
                            cluster="destination"), "PoolNotFound")


def test_missing_destination_pool_for_the_copy(settings, ceph_config):
    vid = create_volume(settings, 8)
    image = "volume-" + vid
    try:
        before = fingerprint(settings)
        expect_error(run_action("copy_replica", ceph_config, image=image,
                                pool=settings.pools.mirrored_cinder), "NotFound")
        plan = run_action("plan_volume_migration",
                          dict(ceph_config, pools=dict(ceph_config["pools"],
                                                       destination_cinder_pool="nopool")),
                          volume_id=vid)
        assert not plan.ok
        assert [c["check"] for c in plan.result["checks"] if not c["ok"]] == \
            ["destination pool exists"]
        assert fingerprint(settings) == before
    finally:
        purge_image(settings, SOURCE, settings.pools.mirrored_cinder, image)


def test_image_already_mirrored_the_other_way(settings, ceph_config):
    """After a failover the source is a non-primary replica: nothing may be started on it."""
    vid = create_volume(settings, 16)
    image = "volume-" + vid
    pool = settings.pools.mirrored_cinder
    try:
        assert run_action("enable_mirroring", ceph_config, image=image).ok
        assert run_action("wait_for_sync", ceph_config, image=image, timeout_seconds=300).ok
        assert run_action("demote_image", ceph_config, image=image).ok
        assert run_action("promote_image", ceph_config, image=image, wait_seconds=120).ok
        before = fingerprint(settings)
        expect_error(run_action("enable_mirroring", ceph_config, image=image), "RefusedError",
                     "already mirrored the other way")
        expect_error(run_action("enable_mirroring", ceph_config, image=image, mode="journal"),
                     "RefusedError", "already mirrored the other way")
        expect_error(run_action("enable_journal_features", ceph_config, image=image),
                     "RefusedError", "non-primary")
        expect_error(run_action("mirror_snapshot", ceph_config, image=image), "RefusedError")
        expect_error(run_action("disable_mirroring", ceph_config, image=image,
                                discard_replica=True), "RefusedError", "not primary")
        expect_error(run_action("remove_image", ceph_config, image=image), "RefusedError",
                     "non-primary replica")
        plan = run_action("plan_volume_migration", ceph_config, volume_id=vid, method="mirror")
        assert not plan.ok and "mirrored the other way" in str(plan.result["checks"])
        plan = run_action("plan_volume_migration", ceph_config, volume_id=vid,
                          method="export_diff")
        assert not plan.ok and "non-primary replica (read-only)" in str(plan.result["checks"])
        expect_error(run_action("sync_image", ceph_config, image=image), "RefusedError",
                     "non-primary")
        assert fingerprint(settings) == before
    finally:
        purge_image(settings, DESTINATION, pool, image)
        purge_image(settings, SOURCE, pool, image)


def test_refusals_that_protect_data(settings, ceph_config):
    vid = create_volume(settings, 16)
    image = "volume-" + vid
    pools = settings.pools
    dest = settings.rbd(DESTINATION)
    try:
        assert run_action("enable_mirroring", ceph_config, image=image).ok
        assert run_action("wait_for_sync", ceph_config, image=image, timeout_seconds=300).ok
        # an unrelated image already holds the destination name
        dest.run_text("create", "%s/%s" % (pools.destination_cinder, image), "--size", "1M")
        before = fingerprint(settings)
        # rbd itself would turn journaling on before refusing the mode: the pack must not
        expect_error(run_action("enable_mirroring", ceph_config, image=image, mode="journal"),
                     "RefusedError", "already mirrored in snapshot mode")
        expect_error(run_action("copy_replica", ceph_config, image=image), "RefusedError",
                     "not a copy of")
        expect_error(run_action("disable_mirroring", ceph_config, image=image), "RefusedError",
                     "no verified copy")
        expect_error(run_action("remove_image", ceph_config, image=image), "RefusedError",
                     "still mirrored")
        expect_error(run_action("remove_image", ceph_config, image=image, cluster="destination"),
                     "RefusedError", "source images only")
        expect_error(run_action("restore_features", ceph_config, image=image), "RefusedError",
                     "disable mirroring")
        assert fingerprint(settings) == before
        # the source can only go once a verified copy of it is recorded
        assert run_action("disable_mirroring", ceph_config, image=image,
                          discard_replica=True).ok
        expect_error(run_action("remove_image", ceph_config, image=image), "RefusedError",
                     "no verified copy")
        assert settings.image(SOURCE, pools.mirrored_cinder, image).exists()
    finally:
        purge_image(settings, SOURCE, pools.mirrored_cinder, image)
        purge_image(settings, DESTINATION, pools.destination_cinder, image)


def test_a_migration_that_would_take_the_destination_past_nearfull_is_refused(
        settings, ceph_config):
    """The plan weighs what the migration writes at its peak (replica + copy, as much as the
    source uses each) against the destination pools' room before nearfull, from the real
    `ceph df`; with a reserve no cluster here can keep, it refuses and changes nothing."""
    vid = create_volume(settings, 64)
    image = "volume-" + vid
    try:
        plan = run_action("plan_volume_migration", ceph_config, volume_id=vid, method="mirror")
        room = [c for c in plan.result["checks"] if c["check"] == "destination has room"]
        assert plan.ok and room and room[0]["ok"], plan.result["checks"]
        assert room[0]["detail"].startswith("needs 0.1 GiB in oscinder and cinder-ceph-pa1-cl1")
        plan = run_action("plan_volume_migration", ceph_config, volume_id=vid,
                          method="export_diff")     # one copy, no replica
        room = [c for c in plan.result["checks"] if c["check"] == "destination has room"]
        assert plan.ok and room[0]["detail"].startswith("needs 0.1 GiB in cinder-ceph-pa1-cl1,")
        before = fingerprint(settings)
        tight = dict(ceph_config, capacity={"reserve_gib": 100000})
        plan = run_action("plan_volume_migration", tight, volume_id=vid)
        room = [c for c in plan.result["checks"] if c["check"] == "destination has room"]
        assert not plan.ok and not room[0]["ok"], plan.result["checks"]
        assert "left before the cluster is nearfull and the configured reserve" in \
            room[0]["detail"]
        assert fingerprint(settings) == before
    finally:
        purge_image(settings, SOURCE, settings.pools.mirrored_cinder, image)
