"""The pack as StackStorm 3.8/3.9 registers and runs it, checked without StackStorm.

Data-driven over the files present, so each new action, sensor or workflow is checked as soon as
it exists. Rules come from st2's own validation (see runner/st2_schema.py,
tests/st2_doubles/st2_metadata.py and the project's notes/stackstorm.md); where st2 silently
accepts something that breaks later (array-form ``required``, a second class in an action file,
an import that only works because ``st2-run-pack-tests`` adds ``<pack>/lib``), these tests are
stricter on purpose.
"""
import glob
import json
import os
import re
import subprocess

import jsonschema
import pytest

from st2_doubles.st2_metadata import param_schema_problems
from st2_support import (
    ACTIONS_DIR, PACK_DIR, PACK_NAME, SENSORS_DIR, DuplicateKeyError,
    action_metadata_files, check_loads_like_st2, load_config_schema, load_yaml_all_strict,
    load_yaml_strict, parse_yaml_strict, secret_values_using_decrypt_kv, sensor_metadata_files,
    validate_pack_config)

EXPECTED_PACK_REF = "ceph_migrate"

# ----------------------------------------------------------------------------- StackStorm facts
PACK_ALLOWED_KEYS = {"ref", "name", "description", "keywords", "version", "stackstorm_version",
                     "python_versions", "author", "email", "contributors", "files",
                     "dependencies", "system"}
PACK_REQUIRED_KEYS = ("name", "description", "version", "author")
PACK_REF_RE = re.compile(r"^[a-z0-9_]+$")
SEMVER_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                       r"(-[\da-z-]+(\.[\da-z-]+)*)?(\+[\da-z-]+(\.[\da-z-]+)*)?$")
ST2_VERSION_RE = re.compile(r"^((>?>|>=|=|<=|<?<)\s*[0-9]+\.[0-9]+\.[0-9]+?(\s*,)?\s*)+$")

ACTION_ALLOWED_KEYS = {"name", "runner_type", "description", "enabled", "pack", "entry_point",
                       "parameters", "output_schema", "tags", "notify", "metadata_file"}
ACTION_NAME_RE = re.compile(r"^[\w.-]+$")
PARAM_NAME_RE = re.compile(r"^\w+$")
RUNNER_OVERRIDABLE_ATTRS = {"default", "description", "enum", "immutable", "required"}
_LOG_LEVELS = ["AUDIT", "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
# Runner parameters (st2 3.9 contrib/runners/*/runner.yaml), descriptions left out. An action
# parameter of the same name overrides the runner's: only RUNNER_OVERRIDABLE_ATTRS may differ.
# None = attributes not recorded here: then no other attribute may be set at all.
RUNNER_PARAMETERS = {
    "python-script": {
        "debug": {"type": "boolean", "required": False, "default": False},
        "content_version": {"type": "string", "required": False},
        "env": {"type": "object"},
        "timeout": {"type": "integer", "default": 600},
        "log_level": {"type": "string", "default": "DEBUG", "enum": _LOG_LEVELS},
    },
    "orquesta": {
        "notify": {"type": "array", "uniqueItems": True, "default": [],
                   "items": {"type": "string", "minLength": 1, "pattern": "^\\w+$"}},
    },
    "inquirer": {
        "schema": {"type": "object", "required": True},
        "route": {"type": "string", "required": False, "default": ""},
        "roles": {"type": "array", "required": False, "default": []},
        "users": {"type": "array", "required": False, "default": []},
        "ttl": {"type": "integer", "required": True, "default": 1440},
    },
    "noop": {},
    "action-chain": {"display_published": {"type": "boolean", "default": True},
                     "skip_notify": {"type": "array", "default": []}},
    "local-shell-cmd": {
        "cmd": {"type": "string"}, "cwd": {"type": "string"}, "env": {"type": "object"},
        "kwarg_op": {"type": "string", "default": "--"},
        "sudo": {"type": "boolean", "default": False},
        "sudo_password": {"type": "string", "default": None, "secret": True,
                          "required": False},
        "timeout": {"type": "integer", "default": 60},
    },
    "local-shell-script": {
        "debug": {"type": "boolean", "required": False, "default": False},
        "content_version": {"type": "string", "required": False},
        "cwd": {"type": "string"}, "env": {"type": "object"},
        "kwarg_op": {"type": "string", "default": "--"},
        "sudo": {"type": "boolean", "default": False},
        "sudo_password": {"type": "string", "default": None, "secret": True,
                          "required": False},
        "timeout": {"type": "integer", "default": 60},
    },
    "announcement": {"experimental": None, "route": None},
    "http-request": dict.fromkeys(["allow_redirects", "cookies", "headers", "http_proxy",
                                   "https_proxy", "password", "url", "username",
                                   "verify_ssl_cert", "url_hosts_blacklist",
                                   "url_hosts_whitelist"]),
    "remote-shell-cmd": dict.fromkeys(["bastion_host", "cmd", "cwd", "dir", "env", "hosts",
                                       "kwarg_op", "parallel", "passphrase", "password",
                                       "port", "private_key", "sudo", "sudo_password",
                                       "timeout", "username"]),
    "remote-shell-script": dict.fromkeys(["bastion_host", "cwd", "dir", "env", "hosts",
                                          "kwarg_op", "parallel", "passphrase", "password",
                                          "port", "private_key", "sudo", "sudo_password",
                                          "timeout", "username"]),
    "winrm-cmd": dict.fromkeys(["cmd", "cwd", "env", "host", "kwarg_op", "password", "port",
                                "scheme", "timeout", "transport", "username",
                                "verify_ssl_cert"]),
    "winrm-ps-cmd": dict.fromkeys(["cmd", "cwd", "env", "host", "kwarg_op", "password", "port",
                                   "scheme", "timeout", "transport", "username",
                                   "verify_ssl_cert"]),
    "winrm-ps-script": dict.fromkeys(["cwd", "env", "host", "kwarg_op", "password", "port",
                                      "scheme", "timeout", "transport", "username",
                                      "verify_ssl_cert"]),
}

SENSOR_ALLOWED_KEYS = {"class_name", "entry_point", "description", "enabled", "trigger_types",
                       "poll_interval", "metadata_file", "pack"}
TRIGGER_TYPE_ALLOWED_KEYS = {"name", "description", "payload_schema", "parameters_schema",
                             "tags", "metadata_file", "pack"}
MINIMUM_POLL_INTERVAL = 4

# A name whose last word is one of these holds a secret and must be marked secret: true (the API
# and UI then mask it). Add a deliberate exception here with a comment, never by renaming.
SECRET_WORDS = {"key", "keyring", "password", "passwd", "passphrase", "token", "secret",
                "credential", "credentials"}
NOT_SECRET_NAMES = set()

SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", ".tox", "__pycache__",
                ".pytest_cache", ".mypy_cache"}


# ----------------------------------------------------------------------------- discovery
def _is_yaml(name):
    return name.endswith((".yaml", ".yml", ".yaml.example", ".yml.example"))


def _repo_yaml_files():
    """YAML files git would commit (tracked or not ignored), else every one on disk."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=PACK_DIR, capture_output=True, text=True, timeout=60, check=True).stdout
        candidates = [os.path.join(PACK_DIR, p) for p in listed.split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        candidates = []
        for root, dirs, files in os.walk(PACK_DIR):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
            candidates.extend(os.path.join(root, name) for name in files)
    found = []
    for path in candidates:
        parts = os.path.relpath(path, PACK_DIR).split(os.sep)
        if _is_yaml(parts[-1]) and os.path.isfile(path) and not any(
                p in SKIPPED_DIRS or p.startswith((".venv", "venv")) for p in parts[:-1]):
            found.append(path)
    return sorted(found)


def _rel(path):
    return os.path.relpath(path, PACK_DIR)


def _ids(paths):
    return [_rel(p) for p in paths]


YAML_FILES = _repo_yaml_files()
ACTION_FILES = action_metadata_files()
SENSOR_FILES = sensor_metadata_files()
WORKFLOW_FILES = sorted(p for p in YAML_FILES
                        if os.path.dirname(p) == os.path.join(ACTIONS_DIR, "workflows"))


def _action(path):
    return load_yaml_strict(path)


def _python_actions():
    result = []
    for path in ACTION_FILES:
        try:
            meta = _action(path)
        except Exception:  # reported by test_action_metadata_keys
            continue
        if isinstance(meta, dict) and meta.get("runner_type") == "python-script":
            result.append(path)
    return result


PYTHON_ACTION_FILES = _python_actions()


# ----------------------------------------------------------------------------- shared checks
def looks_secret(name):
    words = name.lower().split("_")
    return name not in NOT_SECRET_NAMES and (name.lower() in SECRET_WORDS
                                             or words[-1] in SECRET_WORDS)


def secret_name_problems(schema, path):
    """Properties (recursively, through properties and items) named like secrets but not
    marked ``secret: true``."""
    problems = []
    if not isinstance(schema, dict):
        return problems
    for name, sub in (schema.get("properties") or {}).items():
        where = "%s.%s" % (path, name)
        if looks_secret(name) and not (isinstance(sub, dict) and sub.get("secret") is True):
            problems.append("%s looks like a secret: mark it secret: true" % where)
        problems.extend(secret_name_problems(sub, where))
    items = schema.get("items")
    if isinstance(items, dict):
        problems.extend(secret_name_problems(items, path + "[]"))
    return problems


def parameters_problems(parameters, where):
    """Rules every mapping ``name -> parameter schema`` (action params, config schema) obeys."""
    if parameters is None:
        return []
    if not isinstance(parameters, dict):
        return ["%s must be a mapping of name -> schema" % where]
    problems = []
    for name, schema in parameters.items():
        path = "%s.%s" % (where, name)
        if not isinstance(name, str) or not PARAM_NAME_RE.match(name):
            problems.append("%s: names must match ^\\w+$" % path)
        problems.extend(param_schema_problems(schema, path))
        if looks_secret(str(name)) and not (isinstance(schema, dict)
                                            and schema.get("secret") is True):
            problems.append("%s looks like a secret: mark it secret: true" % path)
        problems.extend(secret_name_problems(schema, path))
    return problems


def entry_point_problem(base_dir, entry_point, what):
    """Why ``entry_point`` does not name an existing file inside ``base_dir`` (None if it does)."""
    if not isinstance(entry_point, str) or not entry_point:
        return "%s: entry_point is missing" % what
    if os.path.isabs(entry_point) or ".." in entry_point.replace("\\", "/").split("/"):
        return ("%s: entry_point %r must be a relative path without '..' (st2 rejects paths "
                "outside %s/)" % (what, entry_point, os.path.basename(base_dir)))
    resolved = os.path.realpath(os.path.join(base_dir, entry_point))
    if not resolved.startswith(os.path.realpath(base_dir) + os.sep):
        return "%s: entry_point %r resolves outside %s" % (what, entry_point, base_dir)
    if not os.path.isfile(resolved):
        return "%s: entry_point %r does not exist" % (what, entry_point)
    return None


# ----------------------------------------------------------------------------- YAML
@pytest.mark.parametrize("text, where", [
    ("a: 1\nb: 2\na: 3\n", "line 3"),
    ("top:\n  inner:\n    x: 1\n    x: 2\n", "line 4"),
    ("tasks:\n  - name: t\n    do: a\n    do: b\n", "line 4"),
    ("x: 1\nk: {q: 1, q: 2}\n", "line 2"),
])
def test_strict_yaml_rejects_duplicate_keys(text, where):
    with pytest.raises(DuplicateKeyError) as excinfo:
        parse_yaml_strict(text)
    assert where in str(excinfo.value)


def test_strict_yaml_accepts_unique_keys_and_merge_overrides():
    data = parse_yaml_strict("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  x: 3\n")
    assert data["derived"] == {"x": 3, "y": 2}


def test_repository_has_yaml_files():
    assert os.path.join(PACK_DIR, "pack.yaml") in YAML_FILES


@pytest.mark.parametrize("path", YAML_FILES, ids=_ids(YAML_FILES))
def test_yaml_file_safe_loads_without_duplicate_keys(path):
    load_yaml_all_strict(path)


# ----------------------------------------------------------------------------- pack.yaml
def test_pack_metadata():
    meta = load_yaml_strict(os.path.join(PACK_DIR, "pack.yaml"))
    assert isinstance(meta, dict)
    missing = [k for k in PACK_REQUIRED_KEYS if not meta.get(k)]
    assert not missing, "pack.yaml lacks required keys: %s" % missing
    unknown = sorted(set(meta) - PACK_ALLOWED_KEYS)
    assert not unknown, "pack.yaml has keys st2's pack schema does not define: %s" % unknown
    for key in ("name", "description", "author"):
        assert isinstance(meta[key], str), "%s must be a string" % key
    assert PACK_REF_RE.match(meta.get("ref", "")), "ref must match ^[a-z0-9_]+$"
    assert meta["ref"] == EXPECTED_PACK_REF == PACK_NAME
    assert isinstance(meta["version"], str) and SEMVER_RE.match(meta["version"]), (
        "version %r is not semver MAJOR.MINOR.PATCH (quote it; 0.1 is rejected)"
        % (meta["version"],))
    assert meta.get("python_versions") == ["3"]
    assert isinstance(meta.get("stackstorm_version"), str), "stackstorm_version is missing"
    assert ST2_VERSION_RE.match(meta["stackstorm_version"]), meta["stackstorm_version"]
    for key in ("keywords", "contributors", "dependencies", "files"):
        if key in meta:
            assert isinstance(meta[key], list) and all(isinstance(x, str) for x in meta[key]), (
                "%s must be a list of strings" % key)


def test_no_deprecated_pack_config_yaml():
    assert not os.path.exists(os.path.join(PACK_DIR, "config.yaml")), (
        "config.yaml in the pack is deprecated and fails registration; ship config.schema.yaml "
        "and %s.yaml.example" % PACK_NAME)


# ----------------------------------------------------------------------------- config schema
def test_config_schema_parameters():
    schema = load_config_schema()
    assert isinstance(schema, dict) and schema, "config.schema.yaml must be a non-empty mapping"
    problems = parameters_problems(schema, "config.schema.yaml")
    assert not problems, "\n".join(problems)


def _example_config():
    return load_yaml_strict(os.path.join(PACK_DIR, "%s.yaml.example" % PACK_NAME))


def test_config_example_validates_against_schema():
    example = _example_config()
    assert isinstance(example, dict)
    try:
        validate_pack_config(example, check_decrypt_kv=False)
    except jsonschema.ValidationError as exc:
        pytest.fail("%s.yaml.example does not validate: %s (at %s)"
                    % (PACK_NAME, exc.message, "/".join(map(str, exc.absolute_path))))


def test_config_example_secrets_do_not_use_decrypt_kv():
    bad = secret_values_using_decrypt_kv(_example_config())
    assert not bad, (
        "secret: true values are decrypted by st2 itself; '| decrypt_kv' on top makes st2 "
        "decrypt plaintext (rejected at registration for top-level keys, a run-time failure "
        "for nested ones). Write '{{ st2kv.system.NAME }}' for: %s" % ", ".join(bad))


def test_config_validation_is_not_vacuous():
    """The converted schema must reject what st2 rejects, or the example test proves nothing."""
    config = _example_config()
    config["surely_a_typo"] = 1
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        validate_pack_config(config, check_decrypt_kv=False)
    required = [k for k, v in load_config_schema().items() if v.get("required") is True]
    for key in required:
        config = _example_config()
        config.pop(key, None)
        with pytest.raises(jsonschema.ValidationError, match="%r is a required" % key):
            validate_pack_config(config, check_decrypt_kv=False)


def test_parameter_rules_catch_st2_pitfalls():
    problems = parameters_problems({
        "a": {"type": ["string", "null"]},
        "b": {"type": "object", "required": ["x"], "properties": {"x": {"type": "string"}}},
        "c": {"type": "string", "format": "uri"},
        "d": {"type": "string", "immutable": True},
        "api_token": {"type": "string"},
        "e": {"type": "array", "items": {"type": "object", "properties": {
            "password": {"type": "string"}}}},
        "f": {"type": "integer", "minimum": "zero"},
    }, "p")
    text = "\n".join(problems)
    for expected in ("p.a: type must be", "p.b: required must be a boolean",
                     "p.c: keywords not allowed by st2: format", "p.d: an immutable",
                     "p.api_token looks like a secret", "p.e[].password looks like a secret",
                     "p.f: not a valid Draft-4 schema"):
        assert expected in text, "%s not reported in:\n%s" % (expected, text)


# ----------------------------------------------------------------------------- actions
def test_pack_has_actions():
    assert ACTION_FILES, "no actions/*.yaml: a pack without actions registers nothing useful"


@pytest.mark.parametrize("path", ACTION_FILES, ids=_ids(ACTION_FILES))
def test_action_metadata_keys(path):
    meta = _action(path)
    assert isinstance(meta, dict), "action metadata must be a mapping"
    unknown = sorted(set(meta) - ACTION_ALLOWED_KEYS)
    assert not unknown, "keys st2 rejects in action metadata: %s" % unknown
    name = meta.get("name")
    assert isinstance(name, str) and ACTION_NAME_RE.match(name), "bad name %r" % (name,)
    basename = os.path.splitext(os.path.basename(path))[0]
    assert name == basename, "name %r must equal the file's basename %r" % (name, basename)
    assert meta.get("runner_type") in RUNNER_PARAMETERS, (
        "unknown runner_type %r" % (meta.get("runner_type"),))
    assert meta.get("pack", PACK_NAME) == PACK_NAME
    assert isinstance(meta.get("enabled", True), bool)
    assert isinstance(meta.get("description", ""), str)
    assert isinstance(meta.get("parameters", {}) or {}, dict)
    assert isinstance(meta.get("output_schema", {}) or {}, dict)


@pytest.mark.parametrize("path", ACTION_FILES, ids=_ids(ACTION_FILES))
def test_action_entry_point(path):
    meta = _action(path)
    runner = meta.get("runner_type")
    entry_point = meta.get("entry_point")
    if runner not in ("python-script", "orquesta") and not entry_point:
        return
    problem = entry_point_problem(ACTIONS_DIR, entry_point, _rel(path))
    assert problem is None, problem
    if runner == "python-script":
        assert entry_point == "%s.py" % meta["name"], (
            "convention: actions/<name>.yaml runs actions/<name>.py")
    if runner == "orquesta":
        assert re.match(r"^workflows/[\w.-]+\.ya?ml$", entry_point), (
            "orquesta definitions live in actions/workflows/ (entry_point workflows/<x>.yaml)")


def action_parameters_problems(meta):
    """st2's checks on an action's parameters (validators/api/action.py) plus ours."""
    parameters = meta.get("parameters") or {}
    problems = parameters_problems(parameters, "parameters")
    runner_params = RUNNER_PARAMETERS.get(meta.get("runner_type"), {})
    positions = {}
    for name, schema in parameters.items():
        if not isinstance(schema, dict):
            continue
        if name in runner_params:
            runner_schema = runner_params[name]
            for attr, value in schema.items():
                same = runner_schema is not None and runner_schema.get(attr) == value
                if attr not in RUNNER_OVERRIDABLE_ATTRS and not same:
                    problems.append(
                        "parameters.%s overrides the %s runner parameter: only %s may be set, "
                        "not %s" % (name, meta["runner_type"],
                                    "/".join(sorted(RUNNER_OVERRIDABLE_ATTRS)), attr))
            if "immutable" in schema and (runner_schema or {}).get("immutable"):
                problems.append("parameters.%s is immutable in the runner" % name)
        if "position" in schema:
            if schema["position"] in positions:
                problems.append("parameters %s and %s share position %r"
                                % (positions[schema["position"]], name, schema["position"]))
            positions[schema["position"]] = name
    numbers = sorted(p for p in positions if isinstance(p, int))
    if numbers and numbers != list(range(numbers[0], numbers[-1] + 1)):
        problems.append("positions %s are not contiguous" % numbers)
    return problems


@pytest.mark.parametrize("path", ACTION_FILES, ids=_ids(ACTION_FILES))
def test_action_parameters(path):
    problems = action_parameters_problems(_action(path))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ACTION_FILES, ids=_ids(ACTION_FILES))
def test_every_identifier_parameter_has_its_pattern(path):
    """StackStorm refuses a value that does not match before anything runs: chat text (an
    Orquesta or Jinja expression, a path, an option) never reaches a workflow or a command.
    One table (lib/names.py) for every action; a new *_id / name / pool parameter must join it."""
    from lib.names import PARAMETER_PATTERNS

    missing = []
    for name, spec in (_action(path).get("parameters") or {}).items():
        target = spec.get("items", {}) if spec.get("type") == "array" else spec
        if name in PARAMETER_PATTERNS:
            if target.get("pattern") != PARAMETER_PATTERNS[name]:
                missing.append("%s: pattern %r, wanted %r" % (name, target.get("pattern"),
                                                              PARAMETER_PATTERNS[name]))
        elif target.get("type") == "string" and "enum" not in target and (
                name.endswith(("_id", "image", "pool", "name", "project")) or name == "volumes"):
            missing.append("%s: an identifier without an entry in PARAMETER_PATTERNS" % name)
    assert not missing, "\n".join(missing)


def test_every_bounded_wait_gives_up_before_stackstorm_kills_its_action():
    """A wait or copy that runs into StackStorm's action timeout is killed, not failed with
    `timed_out`/an error the workflows retry on: every bound a user or the config can set
    stays under the timeout of the action that applies it."""
    schema = load_config_schema()

    def action_timeout(name):
        meta = _action(os.path.join(ACTIONS_DIR, name + ".yaml"))
        return ((meta.get("parameters") or {}).get("timeout") or {}).get("default", 600)

    too_long = []
    for path in ACTION_FILES:
        meta = _action(path)
        for name in ("wait_seconds", "timeout_seconds"):
            spec = (meta.get("parameters") or {}).get(name)
            if spec is not None and not spec.get("maximum", 10 ** 9) < action_timeout(
                    meta["name"]):
                too_long.append("%s.%s maximum %s" % (meta["name"], name, spec.get("maximum")))
    copy_max = schema["copy"]["properties"]["timeout"]["maximum"]
    for name in ("copy_replica", "verify_copy"):
        if not copy_max < action_timeout(name):
            too_long.append("copy.timeout maximum %s vs %s" % (copy_max, name))
    wait_max = schema["sync"]["properties"]["wait_timeout"]["maximum"]
    if not wait_max < action_timeout("wait_for_sync"):
        too_long.append("sync.wait_timeout maximum %s" % wait_max)
    assert not too_long, too_long


def test_action_parameter_rules_catch_st2_rejections():
    ok = {"runner_type": "python-script", "parameters": {
        "timeout": {"default": 3600, "description": "long rbd work"},
        "log_level": {"type": "string", "default": "INFO"},  # same type as the runner: allowed
        "image": {"type": "string", "required": True, "position": 0},
        "pool": {"type": "string", "position": 1}}}
    assert action_parameters_problems(ok) == []
    bad = {"runner_type": "python-script", "parameters": {
        "timeout": {"type": "string", "default": "1h"},
        "env": {"type": "object", "properties": {}},
        "a": {"type": "string", "position": 0},
        "b": {"type": "string", "position": 0},
        "c": {"type": "string", "position": 2},
        "d": {"type": "string", "immutable": True}}}
    text = "\n".join(action_parameters_problems(bad))
    for expected in ("parameters.timeout overrides the python-script runner parameter",
                     "not type", "not properties", "share position 0",
                     "positions [0, 2] are not contiguous", "parameters.d: an immutable"):
        assert expected in text, "%s not reported in:\n%s" % (expected, text)


def test_every_action_python_file_has_metadata():
    referenced = set()
    for path in PYTHON_ACTION_FILES:
        referenced.add(os.path.realpath(os.path.join(ACTIONS_DIR, _action(path)["entry_point"])))
    orphans = [os.path.basename(p) for p in sorted(os.listdir(ACTIONS_DIR))
               if p.endswith(".py")
               and os.path.realpath(os.path.join(ACTIONS_DIR, p)) not in referenced]
    assert not orphans, "actions/*.py without metadata (st2 never runs them): %s" % orphans


def run_signature_problems(meta, run_parameters):
    """Compare the metadata parameters with ``run``'s signature as st2 will call it.

    st2 passes EVERY action parameter to run() as a keyword (None when unset and without
    default) and never passes runner parameters.
    """
    runner_params = RUNNER_PARAMETERS.get(meta.get("runner_type"), {})
    declared = {n for n in (meta.get("parameters") or {}) if n not in runner_params}
    accepts_any = any(p["kind"] == "VAR_KEYWORD" for p in run_parameters)
    named = {p["name"]: p for p in run_parameters
             if p["kind"] in ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")}
    problems = []
    if not accepts_any:
        for name in sorted(declared - set(named)):
            problems.append("run() does not accept metadata parameter %r (st2 always passes "
                            "it: TypeError at run time)" % name)
    for name, parameter in sorted(named.items()):
        if not parameter["has_default"] and name not in declared:
            extra = " (a runner parameter: st2 keeps it)" if name in runner_params else ""
            problems.append("run() requires %r, which is not an action parameter%s"
                            % (name, extra))
    for parameter in run_parameters:
        if parameter["kind"] == "POSITIONAL_ONLY" and not parameter["has_default"]:
            problems.append("run() has positional-only %r; st2 passes keywords only"
                            % parameter["name"])
    return problems


@pytest.mark.parametrize("path", PYTHON_ACTION_FILES, ids=_ids(PYTHON_ACTION_FILES))
def test_python_action_loads_like_st2(path):
    meta = _action(path)
    problem = entry_point_problem(ACTIONS_DIR, meta.get("entry_point"), _rel(path))
    assert problem is None, problem
    report = check_loads_like_st2("action", os.path.join(ACTIONS_DIR, meta["entry_point"]))
    assert report.ok, "st2 could not load %s:\n%s" % (meta["entry_point"], report.describe())
    problems = run_signature_problems(meta, report.result["run_parameters"])
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- sensors
def test_sensor_trigger_type_names_are_unique():
    seen = {}
    for path in SENSOR_FILES:
        for trigger_type in (load_yaml_strict(path) or {}).get("trigger_types") or []:
            name = trigger_type.get("name") if isinstance(trigger_type, dict) else None
            assert name not in seen, "trigger type %r defined in %s and %s" % (
                name, seen.get(name), _rel(path))
            seen[name] = _rel(path)


# With no files of a kind, each check still runs once and proves there is nothing to check
# (an empty parametrisation would be reported as a skip).
NOTHING = "(none)"


def nothing_of_this_kind(directory, pattern):
    found = sorted(glob.glob(os.path.join(directory, pattern)))
    assert not found, "files without the metadata that would register them: %s" % found


@pytest.mark.parametrize("path", SENSOR_FILES or [NOTHING], ids=_ids(SENSOR_FILES) or [NOTHING])
def test_sensor_metadata(path):
    if path == NOTHING:
        return nothing_of_this_kind(SENSORS_DIR, "*.py")
    meta = load_yaml_strict(path)
    assert isinstance(meta, dict)
    unknown = sorted(set(meta) - SENSOR_ALLOWED_KEYS)
    assert not unknown, "keys st2 rejects in sensor metadata: %s" % unknown
    assert isinstance(meta.get("class_name"), str) and meta["class_name"], "class_name missing"
    problem = entry_point_problem(SENSORS_DIR, meta.get("entry_point"), _rel(path))
    assert problem is None, problem
    assert meta.get("pack", PACK_NAME) == PACK_NAME
    if meta.get("poll_interval") is not None:
        assert meta["poll_interval"] >= MINIMUM_POLL_INTERVAL, (
            "st2 rejects poll_interval below %s s" % MINIMUM_POLL_INTERVAL)
    problems = []
    for index, trigger_type in enumerate(meta.get("trigger_types") or []):
        where = "trigger_types[%d]" % index
        if not isinstance(trigger_type, dict) or not isinstance(trigger_type.get("name"), str):
            problems.append("%s needs a name" % where)
            continue
        unknown = sorted(set(trigger_type) - TRIGGER_TYPE_ALLOWED_KEYS)
        if unknown:
            problems.append("%s: keys st2 rejects: %s" % (where, unknown))
        for key in ("payload_schema", "parameters_schema"):
            if key in trigger_type:
                problems.extend(param_schema_problems(trigger_type[key],
                                                      "%s.%s" % (where, key)))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", SENSOR_FILES or [NOTHING], ids=_ids(SENSOR_FILES) or [NOTHING])
def test_sensor_loads_like_st2(path):
    if path == NOTHING:
        return nothing_of_this_kind(SENSORS_DIR, "*.yaml")
    meta = load_yaml_strict(path)
    problem = entry_point_problem(SENSORS_DIR, meta.get("entry_point"), _rel(path))
    assert problem is None, problem
    report = check_loads_like_st2("sensor", os.path.join(SENSORS_DIR, meta["entry_point"]),
                                  class_name=meta["class_name"],
                                  poll_interval=meta.get("poll_interval"))
    assert report.ok, "st2 could not load %s:\n%s" % (meta["entry_point"], report.describe())


# ----------------------------------------------------------------------------- workflows
@pytest.mark.parametrize("path", WORKFLOW_FILES or [NOTHING],
                         ids=_ids(WORKFLOW_FILES) or [NOTHING])
def test_orquesta_workflow_header(path):
    if path == NOTHING:
        return nothing_of_this_kind(os.path.join(ACTIONS_DIR, "workflows"), "*.y*ml")
    definition = load_yaml_strict(path)
    assert isinstance(definition, dict), "a workflow definition is a mapping"
    assert definition.get("version") in (1.0, "1.0"), "orquesta needs version: 1.0"


# ----------------------------------------------------------------------------- self-tests
# The checks above are only worth something if they fail on broken code: exercise them on a
# throwaway copy of the pack (never on the real actions/ directory).
GOOD_ACTION = '''
from st2common.runners.base_action import Action

from lib.helper import VALUE


class Good(Action):
    def __init__(self, config=None, action_service=None):
        super().__init__(config=config, action_service=action_service)
        self.cluster = self.config["source_ceph"]["cluster"]

    def run(self, image, pool=None, *, dry_run=False):
        self.action_service.set_value("last", image)
        return {"value": VALUE, "image": image}
'''

BROKEN_ACTIONS = {
    "two_classes": ("from st2common.runners.base_action import Action\n"
                    "class Helper(object):\n    pass\n"
                    "class Two(Action):\n    def run(self):\n        return 1\n",
                    "exactly one class"),
    "pack_common_lib": ("from st2common.runners.base_action import Action\n"
                        "from shared import THING\n"
                        "class Common(Action):\n    def run(self):\n        return THING\n",
                        "No module named 'shared'"),
    "tests_import": ("from st2common.runners.base_action import Action\n"
                     "import st2_support\n"
                     "class FromTests(Action):\n    def run(self):\n        return 1\n",
                     "No module named 'st2_support'"),
    "bare_lib_import": ("from st2common.runners.base_action import Action\n"
                        "from helper import VALUE\n"
                        "class Bare(Action):\n    def run(self):\n        return VALUE\n",
                        "by its bare name"),
    "not_an_action": ("class Plain(object):\n    def run(self):\n        return 1\n",
                      "does not subclass"),
    "no_run": ("from st2common.runners.base_action import Action\n"
               "class NoRun(Action):\n    pass\n",
               "does not implement run"),
    "missing_config_key": ("from st2common.runners.base_action import Action\n"
                           "class NeedsKey(Action):\n"
                           "    def __init__(self, config=None, action_service=None):\n"
                           "        super().__init__(config, action_service)\n"
                           "        self.x = self.config['no_such_key']\n"
                           "    def run(self):\n        return self.x\n",
                           "ValueError"),
}

GOOD_SENSOR = '''
import os
import sys

from st2reactor.sensor.base import PollingSensor

_ACTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "actions")
if _ACTIONS not in sys.path:
    sys.path.append(_ACTIONS)

from lib.helper import VALUE  # noqa: E402


class GoodSensor(PollingSensor):
    def setup(self):
        pass

    def poll(self):
        self.sensor_service.dispatch("%s.ping", {"value": VALUE})

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''

BROKEN_SENSORS = {
    # no sys.path change: sensors get neither actions/ nor actions/lib from st2
    "no_path": ("from st2reactor.sensor.base import Sensor\nfrom lib.helper import VALUE\n",
                "NoPath", "No module named 'lib'"),
    "no_cleanup": ("from st2reactor.sensor.base import Sensor\n"
                   "class NoCleanup(Sensor):\n"
                   "    def setup(self): pass\n    def run(self): pass\n"
                   "    def add_trigger(self, t): pass\n    def update_trigger(self, t): pass\n"
                   "    def remove_trigger(self, t): pass\n",
                   "NoCleanup", "does not implement cleanup"),
    "wrong_class_name": ("from st2reactor.sensor.base import Sensor\n", "Missing",
                         'has no class named "Missing"'),
}


@pytest.fixture
def throwaway_pack(tmp_path):
    """A copy of the pack's metadata and config plus a tiny actions/lib and a pack-root lib/."""
    import shutil

    for name in ("pack.yaml", "config.schema.yaml", "%s.yaml.example" % PACK_NAME):
        shutil.copy(os.path.join(PACK_DIR, name), str(tmp_path / name))
    (tmp_path / "actions" / "lib").mkdir(parents=True)
    (tmp_path / "actions" / "lib" / "__init__.py").write_text("")
    (tmp_path / "actions" / "lib" / "helper.py").write_text("VALUE = 42\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "shared.py").write_text("THING = 1\n")  # st2-run-pack-tests sees it
    (tmp_path / "tests").mkdir()
    (tmp_path / "sensors").mkdir()
    (tmp_path / "sensors" / "good.yaml").write_text(
        "class_name: GoodSensor\nentry_point: good.py\npoll_interval: 10\n"
        "trigger_types:\n  - name: ping\n    payload_schema:\n      type: object\n"
        "      properties:\n        value: {type: integer, required: true}\n")
    (tmp_path / "sensors" / "good.py").write_text(GOOD_SENSOR % PACK_NAME)
    return tmp_path


def test_load_check_accepts_a_good_action(throwaway_pack):
    path = throwaway_pack / "actions" / "good.py"
    path.write_text(GOOD_ACTION)
    report = check_loads_like_st2("action", str(path), pack_dir=str(throwaway_pack))
    assert report.ok, report.describe()
    assert report.result["class"] == "Good"
    meta = {"runner_type": "python-script",
            "parameters": {"image": {"type": "string"}, "pool": {"type": "string"},
                           "dry_run": {"type": "boolean"}, "timeout": {"default": 60}}}
    assert run_signature_problems(meta, report.result["run_parameters"]) == []
    del meta["parameters"]["image"]
    meta["parameters"]["extra"] = {"type": "string"}
    problems = "\n".join(run_signature_problems(meta, report.result["run_parameters"]))
    assert "does not accept metadata parameter 'extra'" in problems
    assert "requires 'image'" in problems


@pytest.mark.parametrize("name", sorted(BROKEN_ACTIONS))
def test_load_check_rejects_a_broken_action(throwaway_pack, name):
    source, expected = BROKEN_ACTIONS[name]
    path = throwaway_pack / "actions" / ("%s.py" % name)
    path.write_text(source)
    report = check_loads_like_st2("action", str(path), pack_dir=str(throwaway_pack))
    assert not report.ok
    assert expected in report.stderr, report.describe()


def test_load_check_accepts_a_good_sensor(throwaway_pack):
    report = check_loads_like_st2("sensor", str(throwaway_pack / "sensors" / "good.py"),
                                  pack_dir=str(throwaway_pack), class_name="GoodSensor",
                                  poll_interval=10)
    assert report.ok, report.describe()
    assert report.result == {"class": "GoodSensor", "polling": True}


@pytest.mark.parametrize("name", sorted(BROKEN_SENSORS))
def test_load_check_rejects_a_broken_sensor(throwaway_pack, name):
    source, class_name, expected = BROKEN_SENSORS[name]
    path = throwaway_pack / "sensors" / ("%s.py" % name)
    path.write_text(source)
    report = check_loads_like_st2("sensor", str(path), pack_dir=str(throwaway_pack),
                                  class_name=class_name)
    assert not report.ok
    assert expected in report.stderr, report.describe()


def test_load_check_runs_with_production_sys_path(throwaway_pack):
    """The child's real sys.path: actions/lib, then the action's own directory appended LAST by
    the loader; never <pack>, <pack>/lib or a tests directory."""
    record = throwaway_pack / "sys_path.json"
    probe = ("import json, sys\n"
             "from st2common.runners.base_action import Action\n"
             "json.dump(sys.path, open(%r, 'w'))\n"
             "class Probe(Action):\n    def run(self):\n        return 1\n" % str(record))
    (throwaway_pack / "actions" / "probe.py").write_text(probe)
    report = check_loads_like_st2("action", str(throwaway_pack / "actions" / "probe.py"),
                                  pack_dir=str(throwaway_pack))
    assert report.ok, report.describe()
    child_path = [os.path.realpath(p) for p in json.loads(record.read_text()) if p]
    pack = os.path.realpath(str(throwaway_pack))
    assert os.path.join(pack, "actions", "lib") in child_path
    assert child_path[-1] == os.path.join(pack, "actions")
    for forbidden in (pack, os.path.join(pack, "lib"), os.path.join(pack, "tests"),
                      os.path.realpath(os.path.dirname(os.path.abspath(__file__))), "/"):
        assert forbidden not in child_path, child_path


def test_entry_point_rules(tmp_path):
    (tmp_path / "actions" / "workflows").mkdir(parents=True)
    (tmp_path / "actions" / "workflows" / "w.yaml").write_text("version: 1.0\n")
    (tmp_path / "outside.py").write_text("")
    base = str(tmp_path / "actions")
    assert entry_point_problem(base, "workflows/w.yaml", "a") is None
    assert "without '..'" in entry_point_problem(base, "../outside.py", "a")
    assert "without '..'" in entry_point_problem(base, "workflows/../../outside.py", "a")
    assert "without '..'" in entry_point_problem(base, str(tmp_path / "outside.py"), "a")
    assert "does not exist" in entry_point_problem(base, "missing.py", "a")
    assert "missing" in entry_point_problem(base, None, "a")
