import pytest

from lib.errors import ConfigError, InvalidName
from lib.plan import VolumeMigrationPlan
from lib.settings import Settings

VID = "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"


def config(**overrides):
    cfg = {"source_ceph": {"cluster": "ceph", "conf": "/etc/ceph/ceph.conf"},
           "destination_ceph": {"cluster": "cephpa1", "conf": "/etc/ceph/cephpa1.conf",
                                "key": "AQBsecretsecret=="},
           "pools": {"mirrored_cinder_pool": "oscinder",
                     "destination_cinder_pool": "cinder-ceph-pa1-cl1"}}
    cfg.update(overrides)
    return cfg


def test_defaults_follow_the_runbook():
    settings = Settings.from_config(config())
    assert settings.mirror_mode == "snapshot"
    assert settings.pools.mirrored_glance == "osglance"
    assert settings.pools.destination_glance == "glance-ct1-cl1"
    assert "journaling" not in settings.copy_features
    assert settings.rbd("destination").cluster.name == "cephpa1"


@pytest.mark.parametrize("bad,match", [
    ({"mirror_mode": "pool"}, "mirror mode"),
    ({"pools": {"mirrored_cinder_pool": "os cinder"}}, "pool name"),
    ({"copy": {"image_features": ["layering", "journaling"]}}, "journaling"),
    ({"source_ceph": None}, "source_ceph"),
    ({"destination_ceph": {"cluster": "ceph", "conf": "/etc/ceph/ceph.conf"}}, "same cluster"),
    ({"source_ceph": {"cluster": "ceph", "client_id": "client.admin"}}, "prefix"),
])
def test_bad_configuration_is_a_clear_error(bad, match):
    with pytest.raises(ConfigError, match=match):
        Settings.from_config(config(**bad))


def test_missing_configuration():
    with pytest.raises(ConfigError, match="no configuration"):
        Settings.from_config(None)


def test_secrets_do_not_show_in_settings_repr():
    assert "AQBsecret" not in repr(Settings.from_config(config()))


def test_volume_plan_names_everything_up_front():
    plan = VolumeMigrationPlan.build(Settings.from_config(config()), VID)
    data = plan.as_dict()
    assert data["image"] == "volume-" + VID
    assert data["source_spec"] == "ceph:oscinder/volume-" + VID
    assert data["destination_spec"] == "cephpa1:cinder-ceph-pa1-cl1/volume-" + VID
    assert data["mode"] == "snapshot" and "journaling" not in data["copy_features"]
    assert any("no feature change" in s for s in data["stages"])
    assert [s for s in data["stages"] if s.startswith("gate:")] == [
        "gate: Ceph admin approves mirroring", "gate: tenant admin stops I/O on the volume",
        "gate: Ceph admin approves cleanup"]


def test_journal_plan_mentions_features_and_their_removal():
    plan = VolumeMigrationPlan.build(Settings.from_config(config()), VID, mode="journal",
                                     destination_image="serverX-vdb")
    stages = " ".join(plan.stages())
    assert "exclusive-lock + journaling" in stages and "remove the features" in stages
    assert plan.destination_image == "serverX-vdb"


@pytest.mark.parametrize("vid,dest", [("not-a-uuid", None), (VID, "../x"), (VID, "a b")])
def test_plan_refuses_bad_names(vid, dest):
    with pytest.raises(InvalidName):
        VolumeMigrationPlan.build(Settings.from_config(config()), vid, destination_image=dest)
