"""The StackStorm doubles behave like st2 3.8/3.9 where the pack depends on it, and are stricter
where st2 would silently misbehave (non-str datastore values, dropped trigger payloads).

If these drift from st2, every test built on them proves less; so each st2 behaviour the pack
relies on is pinned here.
"""
import inspect
import logging

import pytest
import yaml

from runner.st2_schema import to_draft4, validate_like_st2
from st2_doubles.st2_metadata import fill_config_defaults
from st2_doubles.st2_services import (
    ActionServiceDouble, DatastoreServiceDouble, SensorServiceDouble, load_trigger_types)
from st2_support import (
    PACK_NAME, get_action_instance, get_sensor_instance, load_action_class, load_pack_config)
from st2common.runners.base_action import Action
from st2reactor.sensor.base import PollingSensor, Sensor


# ----------------------------------------------------------------------------- base classes
def _signature(func):
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]


def test_base_class_signatures_match_st2():
    assert _signature(Action.__init__) == [("self", inspect.Parameter.empty),
                                           ("config", None), ("action_service", None)]
    assert _signature(Sensor.__init__) == [("self", inspect.Parameter.empty),
                                           ("sensor_service", inspect.Parameter.empty),
                                           ("config", None)]
    assert _signature(PollingSensor.__init__) == [("self", inspect.Parameter.empty),
                                                  ("sensor_service", inspect.Parameter.empty),
                                                  ("config", None), ("poll_interval", 5)]
    assert Action.__abstractmethods__ == frozenset(["run"])
    assert Sensor.__abstractmethods__ == frozenset(
        ["setup", "run", "cleanup", "add_trigger", "update_trigger", "remove_trigger"])
    assert PollingSensor.__abstractmethods__ == frozenset(
        ["setup", "poll", "cleanup", "add_trigger", "update_trigger", "remove_trigger"])


class _Echo(Action):
    def run(self, **kwargs):
        return kwargs


def test_action_base_gives_config_service_and_stdlib_logger():
    service = ActionServiceDouble(PACK_NAME, "_Echo")
    action = _Echo(config={"a": 1}, action_service=service)
    assert action.config["a"] == 1
    assert action.action_service is service
    assert isinstance(action.logger, logging.Logger)
    assert action.logger.name == "actions.python._Echo"


def test_action_config_missing_key_raises_value_error_like_st2():
    action = _Echo(config={"a": 1})
    with pytest.raises(ValueError, match="missing"):
        action.config["nope"]
    assert action.config.get("nope") is None


def test_action_without_run_cannot_be_instantiated():
    class NoRun(Action):
        pass

    with pytest.raises(TypeError):
        NoRun()


def test_polling_sensor_keeps_its_poll_interval():
    class Poller(PollingSensor):
        setup = poll = cleanup = add_trigger = update_trigger = remove_trigger = (
            lambda self, *a: None)

    sensor = Poller(sensor_service=None, config={"x": 1}, poll_interval=30)
    assert sensor.get_poll_interval() == 30
    sensor.set_poll_interval(7)
    assert sensor.get_poll_interval() == 7
    assert sensor.config == {"x": 1} and sensor.sensor_service is None


# ----------------------------------------------------------------------------- datastore
@pytest.mark.parametrize("value", [{"a": 1}, ["x"], 42, 1.5, True, None, b"bytes"])
def test_set_value_rejects_non_str_values(value):
    service = ActionServiceDouble(PACK_NAME, "MyAction")
    with pytest.raises(ValueError, match="must be str"):
        service.set_value("k", value)
    assert service.get_value("k") is None


def test_local_keys_are_named_pack_dot_class_colon_name():
    service = ActionServiceDouble(PACK_NAME, "MyAction")
    assert service.set_value("state", "v1") is True
    assert [kvp.name for kvp in service.list_values(local=False)] == [
        "%s.MyAction:state" % PACK_NAME]
    assert service.get_value("state") == "v1"
    assert service.get_value("%s.MyAction:state" % PACK_NAME, local=False) == "v1"
    assert service.get_value("state", local=False) is None
    other = ActionServiceDouble(PACK_NAME, "OtherAction")
    assert other.get_value("state") is None  # another class's local namespace


def test_global_keys_and_prefix_listing():
    service = ActionServiceDouble(PACK_NAME, "MyAction")
    service.set_value("migration.a", "1", local=False)
    service.set_value("migration.b", "2", local=False)
    service.set_value("mine", "3")
    assert [k.name for k in service.list_values(local=False, prefix="migration.")] == [
        "migration.a", "migration.b"]
    assert [k.name for k in service.list_values()] == ["%s.MyAction:mine" % PACK_NAME]
    page = service.list_values(local=False, prefix="migration.", limit=1, offset=1)
    assert [k.name for k in page] == ["migration.b"]


def test_delete_value_reports_whether_it_existed():
    service = ActionServiceDouble(PACK_NAME, "MyAction")
    service.set_value("k", "v")
    assert service.delete_value("k") is True
    assert service.delete_value("k") is False
    assert service.get_value("k") is None


def test_only_system_scope_is_supported_like_st2():
    service = ActionServiceDouble(PACK_NAME, "MyAction")
    for call in (lambda: service.get_value("k", scope="user"),
                 lambda: service.set_value("k", "v", scope="user"),
                 lambda: service.delete_value("k", scope="user")):
        with pytest.raises(ValueError, match="unsupported"):
            call()


def test_encrypted_values_need_decrypt():
    service = ActionServiceDouble(PACK_NAME, "MyAction")
    service.set_value("pw", "hunter2", encrypt=True)
    assert service.get_value("pw", decrypt=True) == "hunter2"
    assert service.get_value("pw") not in ("hunter2", None)
    assert service.list_values()[0].value != "hunter2"
    assert "hunter2" not in repr(service.list_values()[0])


def test_ttl_expires_keys():
    now = [1000.0]
    store = DatastoreServiceDouble(PACK_NAME, "MyAction", clock=lambda: now[0])
    store.set_value("lease", "x", ttl=60)
    assert store.get_value("lease") == "x"
    now[0] += 61
    assert store.get_value("lease") is None
    with pytest.raises(ValueError, match="ttl"):
        store.set_value("lease", "x", ttl=1.5)


# ----------------------------------------------------------------------------- sensor service
PAYLOAD_SCHEMA = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "required": True},
        "in_sync": {"type": "boolean", "required": True},
        "percent": {"type": "number"},
        "mode": {"type": "string", "enum": ["snapshot", "journal"], "default": "snapshot"},
    },
    "additionalProperties": False,
}
TRIGGER = "%s.image_in_sync" % PACK_NAME


@pytest.fixture
def sensor_service():
    return SensorServiceDouble(PACK_NAME, "MirrorSensor", trigger_types={TRIGGER: PAYLOAD_SCHEMA})


def test_valid_payload_is_dispatched_and_recorded(sensor_service):
    sensor_service.dispatch(TRIGGER, {"image": "volume-1", "in_sync": True}, trace_tag="t1")
    sensor_service.dispatch(TRIGGER, {"image": "volume-2", "in_sync": False, "percent": None})
    assert sensor_service.dispatched_triggers[0] == {
        "trigger": TRIGGER, "payload": {"image": "volume-1", "in_sync": True},
        "trace_tag": "t1"}
    assert [p["image"] for p in sensor_service.payloads(TRIGGER)] == ["volume-1", "volume-2"]


@pytest.mark.parametrize("payload, message", [
    ({"in_sync": True}, "'image' is a required property"),
    ({"image": "v", "in_sync": "yes"}, "is not of type"),
    ({"image": "v", "in_sync": True, "extra": 1}, "Additional properties"),
    ({"image": "v", "in_sync": True, "mode": "both"}, "is not one of"),
    ({"image": None, "in_sync": True}, "is not of type"),
    (None, "is not of type 'object'"),
])
def test_invalid_payload_is_rejected(sensor_service, payload, message):
    with pytest.raises(AssertionError, match="st2 would drop this trigger") as excinfo:
        sensor_service.dispatch(TRIGGER, payload)
    assert message in str(excinfo.value)
    assert sensor_service.dispatched_triggers == []


def test_unknown_trigger_is_rejected(sensor_service):
    with pytest.raises(AssertionError, match="does not exist"):
        sensor_service.dispatch("%s.no_such_trigger" % PACK_NAME, {})
    with pytest.raises(AssertionError, match="does not exist"):
        sensor_service.dispatch("image_in_sync", {"image": "v", "in_sync": True})
    assert sensor_service.dispatched_triggers == []


def test_payload_must_be_json_serialisable(sensor_service):
    with pytest.raises(AssertionError, match="JSON"):
        sensor_service.dispatch(TRIGGER, {"image": "v", "in_sync": True, "percent": object()})


def test_trigger_types_are_read_from_the_packs_sensor_metadata(tmp_path):
    (tmp_path / "pack.yaml").write_text("ref: some_pack\nname: some_pack\n")
    (tmp_path / "sensors").mkdir()
    (tmp_path / "sensors" / "watch.yaml").write_text(yaml.safe_dump({
        "class_name": "Watch", "entry_point": "watch.py",
        "trigger_types": [{"name": "changed", "payload_schema": PAYLOAD_SCHEMA},
                          {"name": "anything"}]}))
    assert load_trigger_types(str(tmp_path)) == {"some_pack.changed": PAYLOAD_SCHEMA,
                                                 "some_pack.anything": {}}
    service = SensorServiceDouble("some_pack", "Watch", pack_dir=str(tmp_path))
    service.dispatch("some_pack.anything", {"free": ["form"]})
    with pytest.raises(AssertionError):
        service.dispatch("some_pack.changed", {"image": 1, "in_sync": True})


def test_sensor_service_logger_and_datastore(sensor_service, caplog):
    logger = sensor_service.get_logger("poller")
    assert isinstance(logger, logging.Logger)
    assert logger.name == "SensorWrapper.%s.MirrorSensor.poller" % PACK_NAME
    with caplog.at_level(logging.INFO):
        logger.info("hello")
    assert "hello" in caplog.text
    sensor_service.set_value("cursor", "42")
    assert sensor_service.list_values()[0].name == "%s.MirrorSensor:cursor" % PACK_NAME
    with pytest.raises(ValueError):
        sensor_service.set_value("cursor", 42)


# ----------------------------------------------------------------------------- st2 schema rules
def test_required_booleans_become_draft4_required_lists():
    converted = to_draft4({"type": "object", "properties": {
        "a": {"type": "string", "required": True, "secret": True},
        "b": {"type": "object", "properties": {"c": {"type": "integer", "required": True}}}}})
    assert converted["required"] == ["a"]
    assert converted["properties"]["b"]["required"] == ["c"]
    assert "secret" not in converted["properties"]["a"]


def test_array_form_required_is_ignored_like_st2():
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}
    assert validate_like_st2({}, schema) == {}


def test_defaults_are_filled_and_optional_values_may_be_null():
    schema = {"type": "object", "properties": {
        "n": {"type": "integer", "default": 3},
        "opt": {"type": "string"},
        "req": {"type": "string", "required": True},
        "nested": {"type": "object", "properties": {"x": {"type": "integer", "default": 1}}}}}
    cleaned = validate_like_st2({"opt": None, "req": "r", "nested": {}}, schema)
    assert cleaned == {"n": 3, "opt": None, "req": "r", "nested": {"x": 1}}
    with pytest.raises(Exception, match="None is not of type"):
        validate_like_st2({"req": None}, schema)


def test_config_loader_defaults_create_absent_sections():
    poll = {"type": "number", "default": 2}
    schema = {"sync": {"type": "object", "properties": {"poll": poll}},
              "t": {"type": "integer", "default": 5}}
    assert fill_config_defaults(schema, {}) == {"sync": {"poll": 2}, "t": 5}
    assert fill_config_defaults(schema, {"t": 9}) == {"sync": {"poll": 2}, "t": 9}


# ----------------------------------------------------------------------------- helpers
ACTION_SOURCE = '''
from st2common.runners.base_action import Action


class Probe(Action):
    def run(self, name):
        self.action_service.set_value("seen", name)
        return {"cluster": self.config["source_ceph"]["cluster"],
                "timeout": self.config["rbd_timeout"]}
'''


def test_get_action_instance_with_config_from_example_dict_or_file(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(ACTION_SOURCE)
    probe_cls = load_action_class(str(path))
    assert probe_cls.__name__ == "Probe" and load_action_class(str(path)) is probe_cls

    action = get_action_instance(probe_cls)  # the pack's example config, defaults filled
    assert action.run(name="x")["cluster"] == load_pack_config()["source_ceph"]["cluster"]
    assert action.action_service.get_value("seen") == "x"
    assert action.action_service.list_values()[0].name == "%s.Probe:seen" % PACK_NAME

    config = {"source_ceph": {"cluster": "from-dict"}, "destination_ceph": {},
              "pools": {}}
    result = get_action_instance(probe_cls, config=config).run(name="y")
    assert result == {"cluster": "from-dict", "timeout": 120}  # rbd_timeout from the schema

    config_file = tmp_path / "ceph_migrate.yaml"
    config_file.write_text(yaml.safe_dump(dict(config, rbd_timeout=30)))
    assert get_action_instance(probe_cls, config=str(config_file)).run(name="z")["timeout"] == 30


def test_load_pack_config_renders_st2kv_only_when_given_a_datastore():
    config = {"source_ceph": {"key": "{{ st2kv.system.src_key }}"},
              "destination_ceph": {"key": "{{ st2kv.system.dst_key | decrypt_kv }}"}}
    raw = load_pack_config(config)
    assert raw["destination_ceph"]["key"] == config["destination_ceph"]["key"]
    rendered = load_pack_config(config, datastore={"src_key": "AQA-src", "dst_key": "AQB-dst"})
    assert rendered["source_ceph"]["key"] == "AQA-src"
    assert rendered["destination_ceph"]["key"] == "AQB-dst"
    with pytest.raises(KeyError, match="src_key"):
        load_pack_config(config, datastore={})


def test_get_sensor_instance_passes_poll_interval_and_service(tmp_path):
    class Poller(PollingSensor):
        setup = poll = cleanup = add_trigger = update_trigger = remove_trigger = (
            lambda self, *a: None)

    sensor = get_sensor_instance(Poller, poll_interval=12)
    assert sensor.get_poll_interval() == 12
    assert isinstance(sensor.sensor_service, SensorServiceDouble)
    assert sensor.config["rbd_timeout"] == 120
