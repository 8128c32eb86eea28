"""The pack's actions as StackStorm runs them: metadata defaults and validation of parameters,
the class found in its file, instantiated with the pack config and an action service."""
import importlib.util
import inspect
import os
import sys
from typing import Any, Dict, Tuple

import jsonschema
import yaml

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOUBLES_DIR = os.path.join(PACK_DIR, "runner", "st2_doubles")
RUNNER_PARAMETERS = {"python-script": {"timeout", "env", "debug", "log_level"}}
_SCHEMA_ONLY = ("required", "secret", "immutable", "position", "description")


def use_st2_doubles() -> None:
    """Without StackStorm installed, its base classes come from runner/st2_doubles."""
    if os.path.dirname(DOUBLES_DIR) not in sys.path:     # st2_doubles.st2_services
        sys.path.append(os.path.dirname(DOUBLES_DIR))
    try:
        import st2common  # noqa: F401
    except ImportError:
        if DOUBLES_DIR not in sys.path:
            sys.path.append(DOUBLES_DIR)
    actions_dir = os.path.join(PACK_DIR, "actions")
    if actions_dir not in sys.path:      # st2 appends the action's directory: lib.* resolves
        sys.path.append(actions_dir)


def metadata(name: str, pack_dir: str = PACK_DIR) -> Dict[str, Any]:
    with open(os.path.join(pack_dir, "actions", "%s.yaml" % name)) as handle:
        return yaml.safe_load(handle)


def parameters(meta: Dict[str, Any], given: Dict[str, Any]) -> Dict[str, Any]:
    """``given`` checked against the metadata (unknown, missing, wrong type: ValueError) and
    completed with its defaults; runner parameters (timeout, ...) are not passed to run()."""
    schema = meta.get("parameters") or {}
    unknown = sorted(set(given) - set(schema))
    if unknown:
        raise ValueError("%s: unknown parameters %s" % (meta["name"], ", ".join(unknown)))
    runner_params = RUNNER_PARAMETERS.get(meta.get("runner_type"), set())
    values = {}
    for key, spec in schema.items():
        if key in runner_params:
            continue
        if given.get(key) is not None:
            value = given[key]
        elif "default" in spec:
            value = spec["default"]
        elif spec.get("required"):
            raise ValueError("%s: parameter %s is required" % (meta["name"], key))
        else:
            continue
        if value is not None:
            try:
                jsonschema.validate(value, {k: v for k, v in spec.items()
                                            if k not in _SCHEMA_ONLY})
            except jsonschema.ValidationError as exc:
                raise ValueError("%s: parameter %s: %s" % (meta["name"], key,
                                                           exc.message)) from None
        values[key] = value
    return values


def action_class(name: str, pack_dir: str = PACK_DIR) -> type:
    """The one Action subclass defined in actions/<name>.py (as st2's loader finds it)."""
    use_st2_doubles()
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
    use_st2_doubles()
    from st2_doubles.st2_services import ActionServiceDouble

    cls = action_class(name, pack_dir)
    service = ActionServiceDouble("ceph_migrate", cls.__name__)
    instance = cls(config=config, action_service=service)
    result = instance.run(**parameters(metadata(name, pack_dir), given))
    if isinstance(result, tuple) and len(result) == 2:
        return bool(result[0]), result[1]
    return True, result
