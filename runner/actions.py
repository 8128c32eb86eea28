"""The pack's actions as StackStorm runs them: a requested call checked as st2 3.9 checks it
(runner and action parameter schemas merged, casts, defaults, validation, immutables), the class
found in its file, instantiated with the pack config and an action service."""
import copy
import fcntl
import importlib.util
import inspect
import json
import os
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, MutableMapping, Optional, Tuple

import jsonschema
import yaml

from runner.st2_schema import cast_like_st2, params_to_object_schema, validate_like_st2

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAND_IN_DIR = os.path.join(PACK_DIR, "runner", "st2_stand_in")
PACK = "ceph_migrate"
Schema = Dict[str, Any]

# The runners' parameter schemas (st2 3.9 contrib/runners/*/runner.yaml): st2 merges them under
# every action's own parameters, so e.g. ``timeout`` is valid for any python action.
RUNNER_PARAMETERS: Dict[str, Dict[str, Schema]] = {
    "python-script": {
        "debug": {"type": "boolean", "required": False, "default": False},
        "content_version": {"type": "string", "required": False},
        "env": {"type": "object"},
        "timeout": {"type": "integer", "default": 600},
        "log_level": {"type": "string", "default": "DEBUG",
                      "enum": ["AUDIT", "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]},
    },
    "orquesta": {
        "notify": {"type": "array", "uniqueItems": True, "default": [],
                   "items": {"type": "string", "minLength": 1, "pattern": r"^\w+$"}},
    },
    "inquirer": {
        "schema": {"type": "object", "required": True,
                   "default": {"title": "response_data", "type": "object", "properties": {
                       "continue": {"type": "boolean", "required": True,
                                    "description": "Would you like to continue the workflow?"}}}},
        "route": {"type": "string", "required": False, "default": ""},
        "roles": {"type": "array", "required": False, "default": []},
        "users": {"type": "array", "required": False, "default": []},
        "ttl": {"type": "integer", "required": True, "default": 1440},
    },
    "noop": {},
    "local-shell-cmd": {
        "cmd": {"type": "string"},
        "cwd": {"type": "string"},
        "env": {"type": "object"},
        "kwarg_op": {"type": "string", "default": "--"},
        "sudo": {"type": "boolean", "default": False},
        "sudo_password": {"type": "string", "default": None, "secret": True, "required": False},
        "timeout": {"type": "integer", "default": 60},
    },
}
# The core actions the pack's workflows may call (st2 3.9 contrib/core/actions/*.yaml).
CORE_ACTIONS: Dict[str, Dict[str, Any]] = {
    "ask": {"name": "ask", "pack": "core", "runner_type": "inquirer"},
    "noop": {"name": "noop", "pack": "core", "runner_type": "noop", "parameters": {}},
    "echo": {"name": "echo", "pack": "core", "runner_type": "local-shell-cmd", "parameters": {
        "message": {"type": "string", "required": True},
        "cmd": {"type": "string", "required": True, "default": 'echo "{{message}}"',
                "immutable": True},
        "kwarg_op": {"immutable": True},
        "sudo": {"default": False, "immutable": True},
        "sudo_password": {"immutable": True}}},
}
# What an action may change of a runner parameter; anything else st2 refuses at request time.
RUNNER_OVERRIDABLE = ("default", "description", "enum", "immutable", "required")


class ParameterError(ValueError):
    """A call StackStorm refuses before any execution starts. ``kind`` is the exception st2
    raises (ValidationError, ValueError, TypeError...) and ``detail`` its message, so the local
    runner can fail a task with the text st2 would show."""

    def __init__(self, ref: str, parameter: str, kind: str, detail: str) -> None:
        super().__init__("%s: parameter %s: %s" % (ref, parameter, detail))
        self.ref, self.parameter, self.kind, self.detail = ref, parameter, kind, detail


@dataclass
class Call:
    """A requested call after st2's checks. ``live``: the given values after st2's casts (what
    st2 records as the execution's parameters); ``runner``: what the runner gets (timeout, ttl,
    route...); ``action``: what run() or the workflow's input gets."""
    ref: str
    live: Dict[str, Any]
    runner: Dict[str, Any]
    action: Dict[str, Any]


def use_st2_stand_in() -> None:
    """Without StackStorm installed, the actions' base class comes from runner/st2_stand_in."""
    try:
        import st2common  # noqa: F401
    except ImportError:
        if STAND_IN_DIR not in sys.path:
            sys.path.append(STAND_IN_DIR)
    actions_dir = os.path.join(PACK_DIR, "actions")
    if actions_dir not in sys.path:      # st2 appends the action's directory: lib.* resolves
        sys.path.append(actions_dir)


DATASTORE_FILE = "CEPH_MIGRATE_LOCAL_DATASTORE"


class LocalDatastore(MutableMapping[str, str]):
    """The local runner's datastore: in the process's memory, or, when the environment names
    a file (CEPH_MIGRATE_LOCAL_DATASTORE), in that JSON file, shared by every process as st2's
    datastore is (a re-run after a killed run finds the tenant's mapping it kept). Secrets
    (values stored encrypted in st2) stay in memory only: the runner has no key for them."""

    def __init__(self) -> None:
        self.memory: Dict[str, str] = {}

    def _read(self) -> Dict[str, str]:
        path = os.environ.get(DATASTORE_FILE)
        if not path or not os.path.exists(path):
            return dict(self.memory)
        with open(path) as handle:
            return dict(json.load(handle), **self.memory)

    def _write(self, change: Any) -> None:
        path = os.environ.get(DATASTORE_FILE)
        if not path:
            change(self.memory)
            return
        with open(path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data: Dict[str, str] = {}
            if os.path.exists(path):
                with open(path) as handle:
                    data = json.load(handle)
            change(data)
            with open(path + ".new", "w") as handle:
                os.fchmod(handle.fileno(), 0o600)
                json.dump(data, handle)
            os.replace(path + ".new", path)

    def keep_secret(self, name: str, value: str) -> None:
        self.memory[name] = value

    def __getitem__(self, name: str) -> str:
        return self._read()[name]

    def __setitem__(self, name: str, value: str) -> None:
        self._write(lambda data: data.__setitem__(name, value))

    def __delitem__(self, name: str) -> None:
        self._write(lambda data: data.pop(name, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def clear(self) -> None:
        self.memory.clear()
        self._write(lambda data: data.clear())


class LocalActionService:
    """The ``action_service`` an action gets from the local runner: what st2's Action base
    reads from the runner's wrapper, and a datastore (LocalDatastore; no sensor runs beside
    the local runner, so the waits' keys are never set and every wait falls back to its own
    checks)."""

    DATASTORE = LocalDatastore()

    def __init__(self, pack: str, class_name: str) -> None:
        self._action_wrapper = SimpleNamespace(_pack=pack, _class_name=class_name,
                                               _log_level="debug")

    def get_value(self, name: str, local: bool = True, scope: str = "system",
                  decrypt: bool = False) -> Optional[str]:
        return self.DATASTORE.get(name)

    def set_value(self, name: str, value: str, ttl: Optional[int] = None, local: bool = True,
                  scope: str = "system", encrypt: bool = False) -> bool:
        if encrypt:
            self.DATASTORE.keep_secret(name, value)
        else:
            self.DATASTORE[name] = value
        return True


_PARSED: Dict[Tuple[str, int, int], Any] = {}


def metadata(name: str, pack_dir: str = PACK_DIR) -> Dict[str, Any]:
    """actions/<name>.yaml, parsed once per version of the file (a workflow run asks for each
    action's metadata at every call); a copy, so a caller may change it."""
    path = os.path.join(pack_dir, "actions", "%s.yaml" % name)
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        with open(path) as handle:
            _PARSED[key] = yaml.safe_load(handle)
    return copy.deepcopy(_PARSED[key])


def action_metadata(ref: str, pack_dir: str = PACK_DIR) -> Dict[str, Any]:
    """Metadata of ``core.<name>`` (built in) or ``ceph_migrate.<name>`` (the pack's file)."""
    pack, _, name = ref.partition(".")
    if pack == "core" and name in CORE_ACTIONS:
        return copy.deepcopy(CORE_ACTIONS[name])
    if pack != PACK or not name:
        raise LookupError('Action "%s" cannot be found.' % ref)
    return metadata(name, pack_dir)


def runner_parameters(meta: Dict[str, Any]) -> Dict[str, Schema]:
    try:
        return RUNNER_PARAMETERS[meta["runner_type"]]
    except KeyError:
        raise LookupError("runner %r is not known here" % meta.get("runner_type")) from None


def merged_schema(meta: Dict[str, Any]) -> Dict[str, Schema]:
    """The runner's parameter schemas deep-merged with the action's (the action wins), as st2
    builds the schema a request is validated against."""
    ref = "%s.%s" % (meta.get("pack", PACK), meta["name"])
    runner = runner_parameters(meta)
    own = meta.get("parameters") or {}
    for name, spec in own.items():
        for attribute, value in (spec or {}).items():
            if name in runner and attribute not in RUNNER_OVERRIDABLE \
                    and value != runner[name].get(attribute):
                raise ParameterError(ref, name, "InvalidActionParameterException",
                                     'The attribute "%s" for the runner parameter "%s" in '
                                     'action "%s" cannot be overridden.'
                                     % (attribute, name, ref))
    return _deep_merge(_deep_merge({}, runner), own)


def _deep_merge(target: Dict[str, Any], other: Dict[str, Any]) -> Dict[str, Any]:
    for key, value in other.items():
        if isinstance(value, dict):
            target[key] = _deep_merge(dict(target.get(key) or {}), value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def check_call(meta: Dict[str, Any], given: Dict[str, Any]) -> Call:
    """Check a requested call as st2 3.9 does for an API request, a workflow task and a
    subworkflow alike (param.render_live_params, then action.create_request), raising
    ParameterError for anything st2 refuses.

    1. each given value is cast by its own schema's type (the runner's for a runner parameter);
    2. the values, defaults filled for absent or null ones, are validated against the merged
       schema with st2's rules (draft-3 ``required: true``, an optional or null-default parameter
       also takes null but its ``enum`` is not widened, unknown parameters refused; an empty
       merged schema accepts anything);
    3. a given immutable parameter (the action's or the runner's) is refused.
    Jinja in given values or defaults is not rendered (the pack has none).
    """
    ref = "%s.%s" % (meta.get("pack", PACK), meta["name"])
    runner = runner_parameters(meta)
    own = meta.get("parameters") or {}
    schema = merged_schema(meta)
    live = {}
    for name, value in given.items():
        try:
            live[name] = cast_like_st2(value, runner.get(name, own.get(name)))
        except (ValueError, TypeError, SyntaxError) as exc:
            raise ParameterError(ref, name, type(exc).__name__, str(exc)) from None
    if schema:
        try:
            validate_like_st2(live, params_to_object_schema(schema))
        except jsonschema.ValidationError as exc:
            raise ParameterError(ref, _culprit(exc, live, schema), "ValidationError",
                                 exc.message) from None
    immutable = [name for name in live if (own.get(name) or {}).get("immutable")
                 or (runner.get(name) or {}).get("immutable")]
    if immutable:
        raise ParameterError(ref, ", ".join(immutable), "ValueError",
                             "Override of immutable parameter(s) %s is unsupported." % immutable)
    final = {}
    for name, spec in schema.items():
        value = live.get(name)
        if value is None or spec.get("immutable"):
            value = copy.deepcopy(spec.get("default"))
        final[name] = cast_like_st2(value, runner.get(name, own.get(name)))
    return Call(ref, live, {k: v for k, v in final.items() if k in runner},
                {k: v for k, v in final.items() if k not in runner})


def _culprit(error: jsonschema.ValidationError, live: Dict[str, Any],
             schema: Dict[str, Schema]) -> str:
    """The parameter a schema error is about (missing and unknown ones have no path)."""
    if error.path:
        return str(error.path[0])
    if error.validator == "required":
        missing: List[str] = [n for n in error.validator_value if n not in error.instance]
        return ", ".join(missing)
    if error.validator == "additionalProperties":
        return ", ".join(sorted(set(live) - set(schema)))
    return "?"


def parameters(meta: Dict[str, Any], given: Dict[str, Any]) -> Dict[str, Any]:
    """What run() (or a workflow's input) receives for ``given``, after st2's checks
    (ParameterError, a ValueError, for a call st2 refuses): every parameter the action declares,
    given, defaulted or None, as st2's runners pass them; runner parameters (timeout, ...) not."""
    return check_call(meta, given).action


def action_class(name: str, pack_dir: str = PACK_DIR) -> type:
    """The one Action subclass defined in actions/<name>.py (as st2's loader finds it)."""
    use_st2_stand_in()
    from st2common.runners.base_action import Action

    path = os.path.join(pack_dir, "actions", metadata(name, pack_dir)["entry_point"])
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if c.__module__ == module.__name__ and issubclass(c, Action)]
    if len(classes) != 1:
        raise LookupError("%s defines %d Action classes" % (path, len(classes)))
    return classes[0]


def run_python_action(name: str, config: Dict[str, Any], given: Dict[str, Any],
                      pack_dir: str = PACK_DIR) -> Tuple[bool, Any]:
    """Run one python-script action; (succeeded, result) as StackStorm would record them."""
    cls = action_class(name, pack_dir)
    service = LocalActionService(PACK, cls.__name__)
    instance = cls(config=config, action_service=service)
    result = instance.run(**parameters(metadata(name, pack_dir), given))
    if isinstance(result, tuple) and len(result) == 2:
        return bool(result[0]), result[1]
    return True, result
