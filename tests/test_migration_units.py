"""The migration value a plan returns and later steps take back: what it must hold, and that a
step given one of another volume (or a forged one) refuses before it touches anything."""
import pytest

from ceph_env import run_action
from lib.errors import RefusedError
from lib.migration import Migration, carried

VID = "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"
OTHER = "1c1f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"
VOLUME = {"id": VID, "name": "db", "description": "", "status": "available", "bootable": False,
          "attached_to": [], "size_gib": 1, "volume_type": "ceph", "encrypted": False,
          "metadata": {}, "project_id": "p-src", "project_name": "tenant",
          "project_domain": "Default", "rbd_image": None}
DATA = {"procedure": "data", "volume_id": VID, "volume": VOLUME,
        "destination_project": {"id": "p-1", "name": "tenant", "domain": "Default"},
        "mode": "snapshot", "mirrored_pool": "oscinder", "destination_pool": "cinder-ceph-pa1-cl1",
        "image": "volume-" + VID, "destination_image": "volume-" + VID, "method": "mirror",
        "placement": "copy"}
CEPH_ONLY = {"source_ceph": {"cluster": "ceph", "conf": "/etc/ceph/ceph.conf"},
             "destination_ceph": {"cluster": "cephpa1", "conf": "/etc/ceph/cephpa1.conf"}}


def test_a_plans_value_goes_there_and_back():
    migration = Migration.from_dict(DATA)
    assert migration.as_dict() == DATA
    assert migration.project("tenant") == migration.project("p-1") == DATA["destination_project"]
    boot = dict(DATA, procedure="boot", mode="journal", image=None, destination_image=None,
                volume=None, destination_project=None)
    assert Migration.from_dict(boot).project("anything") is None
    assert carried(None, VID) is None and carried({}, VID) is None


@pytest.mark.parametrize("changes,words", [
    ({"procedure": "server"}, "procedure"),
    ({"volume_id": "volume-" + VID}, "volume_id"),
    ({"mirrored_pool": "<% ctx(st2) %>"}, "mirrored_pool"),
    ({"image": "../etc"}, "image"),
    ({"mode": "pool"}, "mode"),
    ({"surprise": 1}, "surprise"),
    ({"volume": dict(VOLUME, id=OTHER)}, "describes volume " + OTHER),
    ({"destination_project": {"name": "tenant"}}, "destination_project"),
])
def test_a_forged_or_mangled_value_is_refused(changes, words):
    data = dict(DATA, **changes)
    with pytest.raises(RefusedError, match="migration") as caught:
        Migration.from_dict(data)
    assert words in str(caught.value)
    missing = dict(DATA)
    del missing["volume"]
    with pytest.raises(RefusedError, match="'volume' is a required property"):
        Migration.from_dict(missing)


def test_a_value_of_another_volume_or_project_is_refused():
    with pytest.raises(RefusedError, match="about volume %s, not %s" % (VID, OTHER)):
        carried(DATA, OTHER)
    with pytest.raises(RefusedError, match="not the project the plan resolved"):
        Migration.from_dict(DATA).project("other-tenant")


@pytest.mark.parametrize("action,params", [
    ("manage_volume", {"volume_id": OTHER}),
    ("upload_volume_to_image", {"volume_id": OTHER}),
    ("create_volume_from_image", {"image_id": OTHER, "destination_project": "tenant",
                                  "name": "db", "size_gib": 1, "source_volume_id": OTHER}),
])
def test_steps_refuse_the_plan_of_another_volume_before_anything(action, params):
    """No cloud is configured: the refusal comes before any connection is tried."""
    ran = run_action(action, CEPH_ONLY, migration=DATA, **params)
    assert ran.ok is False and "about volume %s, not %s" % (VID, OTHER) in ran.result["error"], \
        ran.result
