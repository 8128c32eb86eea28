import pytest

from lib.errors import ConfigError, InvalidName, RefusedError
from lib.planning import VolumeMigrationPlan
from lib.settings import Settings

VID = "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"


def config(**overrides):
    cfg = {"source_ceph": {"cluster": "ceph", "conf": "/etc/ceph/ceph.conf"},
           "destination_ceph": {"cluster": "cephpa1", "conf": "/etc/ceph/cephpa1.conf",
                                "key": "AQAAAAAAAAAAABAAZmFrZWZha2VmYWtlZmFrZQ=="},
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
    assert "ZmFrZWZha2Vm" not in repr(Settings.from_config(config()))


def test_volume_plan_names_everything_up_front():
    plan = VolumeMigrationPlan.build(Settings.from_config(config()), VID, method="mirror")
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
                                     destination_image="serverX-vdb", method="mirror")
    stages = " ".join(plan.stages())
    assert "exclusive-lock + journaling" in stages and "remove the features" in stages
    assert plan.destination_image == "serverX-vdb"


def test_the_default_plan_copies_before_the_cutover_and_only_the_delta_inside_it():
    plan = VolumeMigrationPlan.build(Settings.from_config(config()), VID)
    assert plan.method == "export_diff"
    gates = [s for s in plan.stages() if s.startswith("gate:")]
    assert gates == ["gate: Ceph admin approves the copy",
                     "gate: tenant admin stops I/O on the volume",
                     "gate: Ceph admin approves cleanup"]
    stages = plan.stages()
    cutover = stages.index("gate: tenant admin stops I/O on the volume")
    assert any(s.startswith("pre-copy") for s in stages[:cutover])
    assert any("in full" in s for s in stages[:cutover])
    assert any("only what changed" in s for s in stages[cutover:])
    assert not any("mirror" in s for s in stages)
    with pytest.raises(InvalidName):
        VolumeMigrationPlan.build(Settings.from_config(config()), VID, method="rsync")


def test_promote_places_the_replica_where_it_is_and_implies_the_mirror_method():
    settings = Settings.from_config(config())
    plan = VolumeMigrationPlan.build(settings, VID, placement="promote")
    assert (plan.method, plan.placement) == ("mirror", "promote")
    assert (plan.destination_pool, plan.destination_image) == ("oscinder", "volume-" + VID)
    stages = plan.stages()
    cutover = stages.index("gate: tenant admin stops I/O on the volume")
    assert not any(s.startswith("copy ") for s in stages)
    assert any(s.startswith("demote the source") for s in stages[cutover:])
    assert stages.index(next(s for s in stages if s.startswith("verify content"))) > \
        stages.index(next(s for s in stages if s.startswith("manage the replica in place")))
    # the config's placement applies to the mirror method only; a contradiction is refused
    configured = Settings.from_config(config(copy={"placement": "promote"}))
    assert configured.copy_placement == "promote"
    assert VolumeMigrationPlan.build(configured, VID).placement == "copy"   # export_diff
    assert VolumeMigrationPlan.build(configured, VID, method="mirror").placement == "promote"
    with pytest.raises(RefusedError, match="needs method mirror"):
        VolumeMigrationPlan.build(settings, VID, method="export_diff", placement="promote")
    with pytest.raises(RefusedError, match="keeps the replica's name"):
        VolumeMigrationPlan.build(settings, VID, destination_image="other", placement="promote")
    with pytest.raises(InvalidName, match="placement"):
        VolumeMigrationPlan.build(settings, VID, placement="move")
    with pytest.raises(ConfigError, match="volume type"):
        Settings.from_config(config(copy={"promote_volume_type": "{{ x }}"}))


@pytest.mark.parametrize("vid,dest", [("not-a-uuid", None), (VID, "../x"), (VID, "a b")])
def test_plan_refuses_bad_names(vid, dest):
    with pytest.raises(InvalidName):
        VolumeMigrationPlan.build(Settings.from_config(config()), vid, destination_image=dest)


# -- values that skip StackStorm's validation (datastore-rendered strings, the local runner) ---
@pytest.mark.parametrize("bad,match", [
    ({"sync": {"poll_interval": -1}}, "sync.poll_interval must be between 0.2 and 570"),
    ({"sync": {"poll_interval": "soon"}}, "sync.poll_interval must be a number"),
    ({"sync": {"wait_timeout": 3600}}, "sync.wait_timeout must be between 1 and 570"),
    ({"copy": {"timeout": 9000}}, "copy.timeout must be between 60 and 7200"),
    ({"copy": {"timeout": True}}, "copy.timeout must be a number"),
    ({"rbd_timeout": 0}, "rbd_timeout must be between 5 and 3600"),
    ({"rbd_timeout": 12.5}, "rbd_timeout must be a whole number"),
    ({"sensors": {"mirror_poll_interval": 0}}, "sensors.mirror_poll_interval"),
    ({"sensors": {"max_backoff": "-3"}}, "sensors.max_backoff"),
])
def test_out_of_range_numbers_are_refused_with_their_key(bad, match):
    with pytest.raises(ConfigError, match=match):
        Settings.from_config(config(**bad))


def test_numbers_rendered_from_the_datastore_as_strings_are_read():
    settings = Settings.from_config(config(sync={"poll_interval": "0.5", "wait_timeout": "300"},
                                           rbd_timeout="60"))
    assert (settings.poll_interval, settings.wait_timeout, settings.rbd_timeout) == (0.5, 300, 60)


def test_tls_flags_given_as_strings_mean_what_they_say():
    from lib.clouds import CloudSettings

    cloud = {"auth_url": "https://keystone.example.org:5000/v3", "username": "u"}
    assert CloudSettings.from_config(dict(cloud, insecure="false"), "source").insecure is False
    assert CloudSettings.from_config(dict(cloud, insecure="True"), "source").insecure is True
    with pytest.raises(ConfigError, match="source_cloud.insecure must be true or false"):
        CloudSettings.from_config(dict(cloud, insecure="no"), "source")
    with pytest.raises(ConfigError, match="destination_cloud.timeout must be between 1 and 600"):
        CloudSettings.from_config(dict(cloud, timeout=0), "destination")


def test_broker_settings_are_strict_too():
    from lib.broker import BrokerSettings

    assert BrokerSettings.from_config({"host": "h", "ssl": "false"}).use_ssl is False
    for bad, match in (({"ssl": "yes"}, "notifications.ssl"), ({"port": 0}, "notifications.port"),
                       ({"exchanges": "glance"}, "notifications.exchanges must be a list")):
        with pytest.raises(ConfigError, match=match):
            BrokerSettings.from_config(dict({"host": "h"}, **bad))


def test_approvers_given_as_a_string_are_refused_not_spelled_out():
    from lib.gates import Approvals

    def approvers(config):
        return Approvals.from_config(config).gates

    def self_approval(config):
        return Approvals.from_config(config).self_approval

    assert approvers({"approvals": {"ceph_admin": {"users": ["ceph-admin"]}}})["ceph_admin"] == {
        "users": ["ceph-admin"], "roles": [], "chat_users": []}
    with pytest.raises(ConfigError, match="approvals.tenant_admin.chat_users must be a list"):
        approvers({"approvals": {"tenant_admin": {"chat_users": "tina"}}})
    assert self_approval({}) is False and self_approval({"approvals": {"self_approval": "true"}})
    with pytest.raises(ConfigError, match="approvals.self_approval must be true or false"):
        self_approval({"approvals": {"self_approval": "yes"}})
    with pytest.raises(ConfigError, match=r"approvals.ceph_admin.users must be a list, got the "
                                          r"string 'ceph-admin' \(write \[ceph-admin\]\)"):
        approvers({"approvals": {"ceph_admin": {"users": "ceph-admin"}}})
    with pytest.raises(ConfigError, match="approvals.tenant_admin.roles"):
        approvers({"approvals": {"tenant_admin": {"roles": ["", "x"]}}})
    # parsed with the rest of the config too, once
    assert Settings.from_config(config(approvals={"self_approval": True})).approvals == \
        Approvals.from_config({"approvals": {"self_approval": True}})


def test_the_schemas_defaults_are_the_parsers_defaults():
    """StackStorm fills in config.schema.yaml's defaults, the parser falls back to
    lib.config_values.DEFAULTS (the local runner, datastore-rendered blanks, the library used
    alone): both must say the same, and the table names only keys the schema has."""
    from pathlib import Path

    import yaml

    from lib.config_values import DEFAULTS

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.schema.yaml")
                            .read_text())
    declared, defaults = set(), {}

    def walk(properties, prefix):
        for key, spec in properties.items():
            if key.endswith("_cloud"):
                key = "cloud"
            elif key.endswith("_notifications"):
                key = "notifications"
            elif prefix == "approvals." and spec.get("type") == "object":
                key = "gate"
            path = prefix + key
            declared.add(path)
            if "default" in spec:
                assert defaults.setdefault(path, spec["default"]) == spec["default"], path
            walk(spec.get("properties") or {}, path + ".")

    walk(schema, "")
    assert defaults == {key: DEFAULTS[key] for key in defaults if key in DEFAULTS}
    assert set(defaults) <= set(DEFAULTS), set(defaults) - set(DEFAULTS)
    assert set(DEFAULTS) <= declared, set(DEFAULTS) - declared


def test_a_bad_config_fails_the_action_readably_and_is_parsed_once():
    """Settings are built on first use inside run: a bad config is a failed result with the
    key named (lib.action_support.reported), not an action StackStorm cannot load."""
    from lib.action_support import reported
    from lib.base_action import PackAction

    class Probe(PackAction):
        @reported
        def run(self):
            return {"same": self.settings is self.settings, "mode": self.settings.mirror_mode}

    assert Probe(config=config()).run() == {"same": True, "mode": "snapshot"}
    ok, result = Probe(config=config(rbd_timeout=0)).run()
    assert ok is False and result["error_type"] == "ConfigError", result
    assert "rbd_timeout must be between 5 and 3600" in result["error"]
    # the gates need only their approvals
    assert Probe(config={"approvals": {"self_approval": True}}).approvals.self_approval is True
