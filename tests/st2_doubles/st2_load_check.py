"""Load one action or sensor file exactly as StackStorm does, in a fresh interpreter.

Run by ``st2_support.check_loads_like_st2`` as ``python -s st2_load_check.py '<json spec>'`` with
the PYTHONPATH StackStorm's Python runner / sensor container would give it. Steps, after st2 3.9's
python_action_wrapper, sensor_wrapper and util/loader.py:

1. append the file's own directory to sys.path;
2. load the file as a module named after its basename (not registered in sys.modules);
3. action: take the classes whose ``__module__`` is that module - exactly one, a subclass of
   Action; sensor: take ``class_name`` - a Sensor or PollingSensor subclass;
4. check every abstract method of the base class is implemented (st2's plugin check);
5. instantiate it with the pack config and a service double.

Prints one line ``ST2_LOAD_CHECK_RESULT <json>`` on success; otherwise explains on stderr and
exits non-zero.
"""
import sys

if __name__ == "__main__":
    # Our own directory is not on StackStorm's sys.path (st2's wrapper drops its own too).
    del sys.path[0]

import importlib  # noqa: E402
import importlib.util  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import traceback  # noqa: E402

RESULT_MARKER = "ST2_LOAD_CHECK_RESULT "
_HERE = os.path.dirname(os.path.abspath(__file__))


class LoadCheckFailure(Exception):
    """A rule StackStorm (or this project) enforces was broken."""


def _real(path):
    return os.path.realpath(path)


def _is_under(path, directory):
    path, directory = _real(path), _real(directory)
    return path == directory or path.startswith(directory + os.sep)


def _unimplemented_methods(base_class, klass):
    """Abstract methods of ``base_class`` that ``klass`` does not define as plain functions."""
    implemented = set()
    for name, member in inspect.getmembers(klass, inspect.isfunction):
        if not getattr(member, "__isabstractmethod__", False):
            implemented.add(name)
    return sorted(set(base_class.__abstractmethods__) - implemented)


def _load_module(file_path):
    plugin_dir = os.path.dirname(_real(file_path))
    if not any(entry in (plugin_dir, plugin_dir + os.sep) for entry in sys.path):
        sys.path.append(plugin_dir)
    module_name = os.path.splitext(os.path.basename(file_path))[0]
    spec = importlib.util.spec_from_file_location(module_name, file_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _classes_defined_in(module):
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if obj.__module__ == module.__name__]


def _package(name, directory):
    """Import package NAME from DIRECTORY without putting it (or its parent) on sys.path."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(directory, "__init__.py"), submodule_search_locations=[directory])
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)


def _services():
    """The service doubles (and the runner's st2 schema rules they check payloads with),
    loaded from their directories: neither is on StackStorm's sys.path."""
    _package("runner", os.path.join(os.path.dirname(os.path.dirname(_HERE)), "runner"))
    _package("st2_doubles", _HERE)
    return importlib.import_module("st2_doubles.st2_services")


def _check_provenance(spec):
    """Fail if the file only loaded thanks to a directory production StackStorm lacks."""
    pack_dir = spec["pack_dir"]
    actions_lib = os.path.join(pack_dir, "actions", "lib")
    forbidden = [os.path.join(pack_dir, "lib"), os.path.join(pack_dir, "tests")]
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        if _is_under(path, _HERE):
            continue
        for directory in forbidden:
            if _is_under(path, directory):
                raise LoadCheckFailure(
                    "module %r was imported from %s, which is not on StackStorm's sys.path in "
                    "production" % (name, path))
        if _is_under(path, actions_lib) and name != "lib" and not name.startswith("lib."):
            raise LoadCheckFailure(
                "module %r was imported from %s by its bare name: import it as lib.%s. A bare "
                "name loads a second copy (its exception classes differ from the ones lib "
                "raises) and does not exist for sensors." % (name, path, name))
    lib = sys.modules.get("lib")
    lib_file = getattr(lib, "__file__", None) if lib is not None else None
    if lib_file and not _is_under(lib_file, actions_lib):
        raise LoadCheckFailure("'lib' was imported from %s, not from %s"
                               % (lib_file, actions_lib))


def _check_environment(spec):
    """Refuse to judge from an interpreter whose sys.path already holds pack directories."""
    pack_dir = spec["pack_dir"]
    not_in_production = [pack_dir] + [os.path.join(pack_dir, d)
                                      for d in ("lib", "tests", "actions", "sensors")]
    for entry in sys.path:
        if entry and any(_real(entry) == _real(d) for d in not_in_production):
            raise LoadCheckFailure(
                "this interpreter starts with %s on sys.path (a .pth file or site config?); "
                "StackStorm's does not, so the check would be meaningless" % entry)


def _run_parameters(method):
    result = []
    for parameter in inspect.signature(method).parameters.values():
        result.append({"name": parameter.name, "kind": parameter.kind.name,
                       "has_default": parameter.default is not inspect.Parameter.empty})
    return result


def check_action(spec):
    from st2common.runners.base_action import Action

    module = _load_module(spec["file"])
    classes = _classes_defined_in(module)
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise LoadCheckFailure(
            "an action file must define exactly one class (st2 runs the first one it finds); "
            "%s defines %d: %s" % (spec["file"], len(classes), names))
    klass = classes[0]
    if not issubclass(klass, Action):
        raise LoadCheckFailure("class %s does not subclass st2common.runners.base_action.Action"
                               % klass.__name__)
    missing = _unimplemented_methods(Action, klass)
    if missing or inspect.isabstract(klass):
        raise LoadCheckFailure("class %s does not implement %s"
                               % (klass.__name__, ", ".join(missing or
                                                            sorted(klass.__abstractmethods__))))
    _check_provenance(spec)
    services = _services()
    service = services.ActionServiceDouble(spec["pack_name"], klass.__name__)
    instance = klass(config=spec["config"], action_service=service)
    return {"class": klass.__name__, "run_parameters": _run_parameters(instance.run)}


def check_sensor(spec):
    from st2reactor.sensor.base import PollingSensor, Sensor

    module = _load_module(spec["file"])
    class_name = spec["class_name"]
    klass = getattr(module, class_name, None)
    if not inspect.isclass(klass):
        raise LoadCheckFailure('sensor file %s has no class named "%s"'
                               % (spec["file"], class_name))
    if klass.__module__ != module.__name__:
        raise LoadCheckFailure("class %s is imported into %s, not defined there"
                               % (class_name, spec["file"]))
    if not issubclass(klass, (Sensor, PollingSensor)):
        raise LoadCheckFailure("class %s subclasses neither Sensor nor PollingSensor"
                               % class_name)
    missing = _unimplemented_methods(Sensor, klass)
    if missing or inspect.isabstract(klass):
        raise LoadCheckFailure("class %s does not implement %s"
                               % (class_name, ", ".join(missing or
                                                        sorted(klass.__abstractmethods__))))
    _check_provenance(spec)
    services = _services()
    service = services.SensorServiceDouble(spec["pack_name"], class_name,
                                           pack_dir=spec["pack_dir"])
    kwargs = {"sensor_service": service, "config": spec["config"]}
    if spec.get("poll_interval") and issubclass(klass, PollingSensor):
        kwargs["poll_interval"] = spec["poll_interval"]
    klass(**kwargs)
    return {"class": class_name, "polling": issubclass(klass, PollingSensor)}


def main(argv):
    spec = json.loads(argv[1])
    try:
        _check_environment(spec)
        check = check_action if spec["kind"] == "action" else check_sensor
        result = check(spec)
    except LoadCheckFailure as exc:
        sys.stderr.write("ST2_LOAD_CHECK_FAILED: %s\n" % exc)
        return 2
    except BaseException:  # noqa: B902 - report whatever the pack's code raised
        sys.stderr.write(traceback.format_exc())
        sys.stderr.write("sys.path was:\n  %s\n" % "\n  ".join(sys.path))
        return 1
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
