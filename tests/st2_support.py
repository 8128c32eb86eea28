"""Shared test support: StackStorm doubles on sys.path, strict YAML, pack config, st2-like loading.

Imported by ``tests/conftest.py``; importing it has two effects, both mirroring production:

* the StackStorm stand-ins (``runner/st2_stand_in``: st2common; ``tests/st2_doubles``:
  st2reactor) go on sys.path ONLY if the real ``st2common`` cannot be imported (so a machine
  with StackStorm tests against the real classes);
* ``<pack>/actions`` goes on sys.path (st2's loader appends the action's directory), so tests
  import the core as ``lib.<module>`` exactly as actions do. ``<pack>/lib`` never does: st2 only
  adds it when an operator sets ``packs.enable_common_libs``.
"""
import copy
import glob
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import sysconfig

import pytest
import yaml
import yaml.constructor

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PACK_DIR = os.path.dirname(TESTS_DIR)
DOUBLES_DIR = os.path.join(TESTS_DIR, "st2_doubles")
ACTIONS_DIR = os.path.join(PACK_DIR, "actions")
SENSORS_DIR = os.path.join(PACK_DIR, "sensors")
LOAD_CHECK_SCRIPT = os.path.join(DOUBLES_DIR, "st2_load_check.py")


def _append_to_sys_path(directory):
    if directory not in sys.path:
        sys.path.append(directory)


for _directory in (TESTS_DIR, PACK_DIR):
    # ``st2_doubles.*``, the test helpers and ``runner.*``, whatever pytest's import mode is
    if _directory not in sys.path:
        sys.path.insert(0, _directory)

from runner.actions import STAND_IN_DIR  # noqa: E402


def _real_st2_importable():
    """True if ``st2common`` comes from a real StackStorm install, not from our stand-in."""
    spec = importlib.util.find_spec("st2common")
    if spec is None:
        return False
    origin = spec.origin or next(iter(spec.submodule_search_locations or []), "")
    return not os.path.realpath(origin).startswith(os.path.realpath(STAND_IN_DIR) + os.sep)


REAL_ST2 = _real_st2_importable()
if not REAL_ST2:
    _append_to_sys_path(STAND_IN_DIR)
    _append_to_sys_path(DOUBLES_DIR)
_append_to_sys_path(ACTIONS_DIR)

from runner.st2_schema import params_to_object_schema, validate_like_st2  # noqa: E402
from st2_doubles.st2_metadata import fill_config_defaults, is_jinja_expression  # noqa: E402
from st2_doubles.st2_services import (  # noqa: E402
    ActionServiceDouble, SensorServiceDouble, load_trigger_types)

__all__ = [
    "PACK_DIR", "TESTS_DIR", "DOUBLES_DIR", "STAND_IN_DIR", "ACTIONS_DIR", "SENSORS_DIR",
    "REAL_ST2",
    "PACK_NAME", "DuplicateKeyError", "StrictSafeLoader", "parse_yaml_strict",
    "load_yaml_strict", "load_yaml_all_strict",
    "pack_name", "load_config_schema", "load_pack_config", "validate_pack_config",
    "secret_values_using_decrypt_kv",
    "action_metadata", "load_action_class", "get_action_instance",
    "sensor_metadata", "load_sensor_class", "get_sensor_instance",
    "action_metadata_files", "sensor_metadata_files",
    "LoadReport", "production_pythonpath", "check_loads_like_st2",
    "ActionServiceDouble", "SensorServiceDouble", "load_trigger_types",
    "pack_config", "make_action", "make_sensor",
]


# --------------------------------------------------------------------------- strict YAML
class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping repeats a key; PyYAML (and st2, and orquesta 1.2) would keep the last silently."""


class StrictSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that rejects duplicate keys in any mapping, at any depth."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<" merges may be overridden by explicit keys: that is YAML
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: let SafeLoader raise its own error
                if first is not None:
                    raise DuplicateKeyError(
                        "while constructing a mapping", node.start_mark,
                        "found duplicate key %r (first defined at line %d)"
                        % (key, first.line + 1), key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def parse_yaml_strict(text):
    """Safe-load one YAML document from a string, rejecting duplicate keys."""
    return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass


def load_yaml_strict(path):
    """Safe-load the one YAML document in file ``path``, rejecting duplicate keys."""
    with open(os.fspath(path), encoding="utf-8") as handle:
        return parse_yaml_strict(handle.read())


def load_yaml_all_strict(path):
    """Safe-load every document of the YAML file ``path``, rejecting duplicate keys."""
    with open(os.fspath(path), encoding="utf-8") as handle:
        return list(yaml.load_all(handle.read(), Loader=StrictSafeLoader))  # noqa: S506


# --------------------------------------------------------------------------- pack config
def pack_name(pack_dir=PACK_DIR):
    """The pack ref st2 uses (``ref``, else ``name``) from pack.yaml."""
    meta = load_yaml_strict(os.path.join(pack_dir, "pack.yaml")) or {}
    return meta.get("ref") or meta.get("name")


PACK_NAME = pack_name()


def load_config_schema(pack_dir=PACK_DIR):
    """config.schema.yaml as a dict (empty if the pack has none)."""
    path = os.path.join(pack_dir, "config.schema.yaml")
    return (load_yaml_strict(path) or {}) if os.path.exists(path) else {}


_ST2KV_RE = re.compile(r"^\s*{{\s*st2kv\.system\.([\w.-]+)\s*(\|\s*decrypt_kv\s*)?}}\s*$")


def _render_st2kv(value, datastore):
    if isinstance(value, dict):
        return {k: _render_st2kv(v, datastore) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_st2kv(v, datastore) for v in value]
    match = _ST2KV_RE.match(value) if isinstance(value, str) else None
    if match:
        if match.group(1) not in datastore:
            raise KeyError("config refers to st2kv.system.%s, which the test datastore lacks"
                           % match.group(1))
        return datastore[match.group(1)]
    return value


def load_pack_config(config=None, pack_dir=PACK_DIR, datastore=None):
    """The config dict an action or sensor of this pack receives from st2.

    ``config``: None -> the pack's ``<pack>.yaml.example``; a dict -> that dict; a path -> that
    YAML file. Schema defaults are filled the way st2's config loader does at run time. With
    ``datastore`` (name -> value), ``{{ st2kv.system.NAME }}`` values (with or without
    ``| decrypt_kv``) are replaced; otherwise such strings are passed through unrendered.
    """
    if config is None:
        config = os.path.join(pack_dir, "%s.yaml.example" % pack_name(pack_dir))
    if isinstance(config, dict):
        values = copy.deepcopy(config)
    else:
        values = load_yaml_strict(os.fspath(config)) or {}
    if datastore is not None:
        values = _render_st2kv(values, datastore)
    return fill_config_defaults(load_config_schema(pack_dir), values)


def _secret_values_with_decrypt_kv(schema_by_key, values, path=""):
    """Paths of ``secret: true`` values written as Jinja with ``decrypt_kv``."""
    found = []
    if not isinstance(values, dict):
        return found
    for key, value in values.items():
        item = schema_by_key.get(key) if isinstance(schema_by_key, dict) else None
        if not isinstance(item, dict):
            continue
        where = "%s.%s" % (path, key) if path else key
        if item.get("secret") and is_jinja_expression(value) and "decrypt_kv" in value:
            found.append(where)
        if isinstance(value, dict):
            found.extend(_secret_values_with_decrypt_kv(item.get("properties") or {}, value,
                                                        where))
        elif isinstance(value, list) and isinstance(item.get("items"), dict):
            for index, element in enumerate(value):
                found.extend(_secret_values_with_decrypt_kv(
                    item["items"].get("properties") or {}, element,
                    "%s[%d]" % (where, index)))
    return found


def secret_values_using_decrypt_kv(config, config_schema=None, pack_dir=PACK_DIR):
    """Paths (``a.b``) of ``secret: true`` config values written as Jinja with ``decrypt_kv``.

    st2 decrypts secret values itself; ``decrypt_kv`` on top makes it decrypt plaintext. st2
    rejects this for top-level keys at registration; nested ones fail at run time, when the
    config loader decrypts twice. So any path listed here is a bug.
    """
    if config_schema is None:
        config_schema = load_config_schema(pack_dir)
    return _secret_values_with_decrypt_kv(config_schema, config or {})


def validate_pack_config(config, config_schema=None, pack_dir=PACK_DIR, check_decrypt_kv=True):
    """Validate a config dict as ``st2ctl reload --register-configs`` does; return it cleaned.

    Stricter than st2 in one way: unknown top-level keys are rejected (st2 allows them; they
    are typos). With ``check_decrypt_kv`` it also refuses ``decrypt_kv`` on a ``secret: true``
    value at any depth (see secret_values_using_decrypt_kv). Raises ``jsonschema.ValidationError``.
    """
    import jsonschema

    if config_schema is None:
        config_schema = load_config_schema(pack_dir)
    schema = params_to_object_schema(config_schema, additional_properties=False)
    cleaned = validate_like_st2(config or {}, schema)
    double_decrypt = secret_values_using_decrypt_kv(config, config_schema) \
        if check_decrypt_kv else []
    if double_decrypt:
        raise jsonschema.ValidationError(
            "secret: true values are decrypted by st2 itself; remove '| decrypt_kv' from: %s"
            % ", ".join(double_decrypt))
    return cleaned


# --------------------------------------------------------------------------- in-process loading
_MODULE_CACHE = {}


def _load_module_like_st2(file_path):
    """Load a plugin file as st2 does: its directory appended to sys.path, module named after
    the file, not registered in sys.modules. Cached so every test gets the same classes."""
    file_path = os.path.realpath(file_path)
    if file_path not in _MODULE_CACHE:
        _append_to_sys_path(os.path.dirname(file_path))
        name = os.path.splitext(os.path.basename(file_path))[0]
        spec = importlib.util.spec_from_file_location(name, file_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULE_CACHE[file_path] = module
    return _MODULE_CACHE[file_path]


def action_metadata(name, pack_dir=PACK_DIR):
    """``actions/<name>.yaml`` as a dict."""
    return load_yaml_strict(os.path.join(pack_dir, "actions", "%s.yaml" % name))


def load_action_class(name_or_path, pack_dir=PACK_DIR):
    """The action class of ``actions/<name>.py`` (or of a .py path), found as st2 finds it."""
    from st2common.runners.base_action import Action

    path = name_or_path if str(name_or_path).endswith(".py") else os.path.join(
        pack_dir, "actions", "%s.py" % name_or_path)
    module = _load_module_like_st2(path)
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if c.__module__ == module.__name__ and issubclass(c, Action)]
    if len(classes) != 1:
        raise LookupError("%s defines %d Action classes, st2 needs exactly one"
                          % (path, len(classes)))
    return classes[0]


def get_action_instance(action_cls, config=None, action_service=None, datastore=None,
                        pack_dir=PACK_DIR):
    """Instantiate an action like st2's Python runner (cf. st2tests' get_action_instance).

    ``config``: None (the pack's example config), a dict or a YAML path, see load_pack_config.
    ``action_cls`` may also be an action name. The default service is an ActionServiceDouble
    whose local keys are ``<pack>.<ClassName>:<name>``.
    """
    if isinstance(action_cls, str):
        action_cls = load_action_class(action_cls, pack_dir)
    if action_service is None:
        action_service = ActionServiceDouble(pack_name(pack_dir), action_cls.__name__)
    return action_cls(config=load_pack_config(config, pack_dir, datastore),
                      action_service=action_service)


def sensor_metadata(name, pack_dir=PACK_DIR):
    """``sensors/<name>.yaml`` as a dict."""
    return load_yaml_strict(os.path.join(pack_dir, "sensors", "%s.yaml" % name))


def load_sensor_class(name, pack_dir=PACK_DIR):
    """The class named by ``sensors/<name>.yaml`` (class_name + entry_point)."""
    meta = sensor_metadata(name, pack_dir)
    module = _load_module_like_st2(os.path.join(pack_dir, "sensors", meta["entry_point"]))
    return getattr(module, meta["class_name"])


def get_sensor_instance(sensor_cls, config=None, sensor_service=None, poll_interval=None,
                        datastore=None, pack_dir=PACK_DIR):
    """Instantiate a sensor like st2's sensor container; ``sensor_cls`` may be a sensor name.

    The default service is a SensorServiceDouble that knows the pack's trigger types; use
    ``instance.sensor_service.dispatched_triggers`` / ``.payloads(ref)`` to assert.
    """
    from st2reactor.sensor.base import PollingSensor

    if isinstance(sensor_cls, str):
        meta = sensor_metadata(sensor_cls, pack_dir)
        poll_interval = poll_interval or meta.get("poll_interval")
        sensor_cls = load_sensor_class(sensor_cls, pack_dir)
    if sensor_service is None:
        sensor_service = SensorServiceDouble(pack_name(pack_dir), sensor_cls.__name__,
                                             pack_dir=pack_dir)
    kwargs = {"sensor_service": sensor_service,
              "config": load_pack_config(config, pack_dir, datastore)}
    if poll_interval and issubclass(sensor_cls, PollingSensor):
        kwargs["poll_interval"] = poll_interval
    return sensor_cls(**kwargs)


# --------------------------------------------------------------------------- fresh-process loading
class LoadReport(object):
    """Outcome of check_loads_like_st2: ``ok``, ``result`` (dict), ``stderr``, ``describe()``."""

    def __init__(self, completed, pythonpath):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.pythonpath = pythonpath
        self.result = None
        for line in completed.stdout.splitlines():
            if line.startswith("ST2_LOAD_CHECK_RESULT "):
                self.result = json.loads(line[len("ST2_LOAD_CHECK_RESULT "):])
        self.ok = completed.returncode == 0 and self.result is not None

    def describe(self):
        return ("exit code %s\nPYTHONPATH=%s\n--- stderr ---\n%s\n--- stdout ---\n%s"
                % (self.returncode, self.pythonpath, self.stderr.strip(), self.stdout.strip()))


def _site_packages():
    paths = []
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return paths


def production_pythonpath(kind, pack_dir=PACK_DIR):
    """PYTHONPATH StackStorm gives an action or sensor process, with this venv standing in for
    the pack's virtualenv (and our doubles for st2's own libraries when st2 is not installed).
    Actions get ``<pack>/actions/lib``; sensors do not. Never ``<pack>/lib`` nor tests/."""
    entries = _site_packages()
    if kind == "action":
        entries.append(os.path.join(pack_dir, "actions", "lib"))
    if not REAL_ST2:
        entries += [STAND_IN_DIR, DOUBLES_DIR]
    return os.pathsep.join(entries)


def check_loads_like_st2(kind, file_path, pack_dir=PACK_DIR, class_name=None, config=None,
                         poll_interval=None, timeout=120):
    """Load an action (``kind="action"``) or sensor file in a fresh interpreter the way st2 does.

    ``config`` is the pack config passed to the constructor (default: the example config with
    defaults filled). Returns a LoadReport; ``report.result`` holds the class name and, for
    actions, ``run_parameters`` (name, kind, has_default) of the instance's ``run``.
    """
    if config is None:
        config = load_pack_config(None, pack_dir)
    spec = {"kind": kind, "file": os.path.abspath(file_path), "class_name": class_name,
            "pack_dir": os.path.abspath(pack_dir), "pack_name": pack_name(pack_dir),
            "config": config, "poll_interval": poll_interval}
    pythonpath = production_pythonpath(kind, pack_dir)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH",
                        "PYTHONUSERBASE", "PYTHONINSPECT")}
    env["PYTHONPATH"] = pythonpath
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # -s: no user site-packages, which StackStorm's service user would not share with us
    completed = subprocess.run(
        [sys.executable, "-s", LOAD_CHECK_SCRIPT, json.dumps(spec)],
        env=env, cwd=os.path.abspath(os.sep), capture_output=True, text=True, timeout=timeout)
    return LoadReport(completed, pythonpath)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def pack_config():
    """A fresh copy of the example config with schema defaults, as an action would get it."""
    return load_pack_config()


@pytest.fixture
def make_action():
    """``make_action(name_or_cls, config=None, action_service=None, datastore=None)``."""
    return get_action_instance


@pytest.fixture
def make_sensor():
    """``make_sensor(name_or_cls, config=None, sensor_service=None, poll_interval=None)``."""
    return get_sensor_instance


def action_metadata_files(pack_dir=PACK_DIR):
    """Sorted ``actions/*.yaml``/``*.yml`` (st2 does not recurse; workflows/ are not actions)."""
    return sorted(glob.glob(os.path.join(pack_dir, "actions", "*.yaml"))
                  + glob.glob(os.path.join(pack_dir, "actions", "*.yml")))


def sensor_metadata_files(pack_dir=PACK_DIR):
    """Sorted ``sensors/*.yaml``/``*.yml``."""
    return sorted(glob.glob(os.path.join(pack_dir, "sensors", "*.yaml"))
                  + glob.glob(os.path.join(pack_dir, "sensors", "*.yml")))
