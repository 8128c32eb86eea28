"""Action aliases, rules and the respond_gate action they use.

Aliases: metadata st2 registers, formats whose placeholders are parameters of the aliased
action, example chat commands that each match exactly one format of the pack (matched by a
re-implementation of st2's alias format parsing, written from its documented behaviour), and
ack/result templates that render readable text on realistic executions. Rules: shipped
disabled, triggers the pack's sensors (or st2) emit, valid criteria, and action parameters that
render on real trigger payloads into values the target action accepts.
"""
import ast
import glob
import json
import os
import re
import sys
import types

import jinja2
import jinja2.sandbox
import jsonschema
import pytest

from st2_support import PACK_DIR, PACK_NAME, load_trigger_types, load_yaml_strict
from runner.st2_schema import params_to_object_schema, validate_like_st2
from ceph_env import run_action
from lib.mirror_watch import MirrorWatch
from lib.notifications import image_payload, volume_payload
from lib.replication_status import MirrorStatus

ALIAS_FILES = sorted(glob.glob(os.path.join(PACK_DIR, "aliases", "*.yaml")))
RULE_FILES = sorted(glob.glob(os.path.join(PACK_DIR, "rules", "*.yaml")))
ALIASES = {os.path.basename(p): load_yaml_strict(p) for p in ALIAS_FILES}
RULES = {os.path.basename(p): load_yaml_strict(p) for p in RULE_FILES}
ACTIONS = {}
for _path in glob.glob(os.path.join(PACK_DIR, "actions", "*.yaml")):
    _meta = load_yaml_strict(_path)
    ACTIONS["%s.%s" % (PACK_NAME, _meta["name"])] = _meta

VOL = "0b7e4a52-7d1c-4f3e-9a1b-2f6c8d9e0a11"
VOL2 = "5d2f1c3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f"
NEW_VOL = "9c8b7a65-4321-4fed-8cba-0987654321ab"
IMG = "3f4e5d6c-7b8a-4a9b-8c7d-6e5f4a3b2c1d"
INQUIRY = "6566f3f0c1a2b3d4e5f60718"
EXECUTION = "6566f3f0c1a2b3d4e5f6a0b1"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SRV = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
NEW_SRV = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
SRV2 = "2e4d6f80-1a3c-4b5d-8e7f-9a0b1c2d3e4f"

# st2's alias API schema (st2common/models/api/action.py ActionAliasAPI) and rule API schema
ALIAS_KEYS = {"name", "pack", "description", "enabled", "action_ref", "formats", "ack", "result",
              "extra", "immutable_parameters", "metadata_file"}
RULE_KEYS = {"name", "pack", "description", "enabled", "trigger", "criteria", "action",
             "context", "tags", "metadata_file"}
# st2common/operators.py
OPERATORS = {"matchwildcard", "matchregex", "regex", "iregex", "eq", "equals", "neq", "nequals",
             "ieq", "iequals", "contains", "icontains", "ncontains", "incontains", "startswith",
             "istartswith", "endswith", "iendswith", "lt", "lessthan", "gt", "greaterthan",
             "td_lt", "timediff_lt", "td_gt", "timediff_gt", "exists", "nexists", "inside",
             "in", "ninside", "nin", "search"}
CORE_TRIGGERS = {"core.st2.generic.actiontrigger", "core.st2.generic.notifytrigger",
                 "core.st2.generic.inquiry", "core.st2.CronTimer", "core.st2.IntervalTimer",
                 "core.st2.DateTimer", "core.st2.webhook"}
DOCUMENTED_PACK_TRIGGERS = {PACK_NAME + "." + n for n in (
    "mirror_progress", "mirror_synced", "mirror_stalled", "mirror_error", "image_status",
    "volume_status")}
SENSOR_TRIGGERS = load_trigger_types(PACK_DIR)       # empty until sensors/*.yaml exist
PACK_TRIGGERS = set(SENSOR_TRIGGERS) or DOCUMENTED_PACK_TRIGGERS
# contrib/chatops/actions/post_message.yaml (announcement runner)
POST_MESSAGE_PARAMETERS = {
    "message": {"type": "string", "required": True},
    "channel": {"type": "string", "required": True},
    "user": {"type": "string"}, "whisper": {"type": "boolean", "default": False},
    "context": {"type": "object"}, "extra": {"type": "object"},
    "route": {"type": "string", "default": "chatops"},
    "experimental": {"type": "boolean", "default": True, "immutable": True}}
# st2common/constants/triggers.py CRON_PARAMETERS_SCHEMA, ranges as apscheduler takes them
CRON_RANGES = {"year": (1970, 9999), "month": (1, 12), "day": (1, 31), "week": (1, 53),
               "day_of_week": (0, 6), "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}
WEEKDAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


def _ids(paths):
    return [os.path.basename(p) for p in paths]


def _env(strict):
    """The Jinja environment st2 renders with: sandboxed, trim_blocks and lstrip_blocks; strict
    for alias acks and rule parameters, lenient for alias results (format_execution_result)."""
    return jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
        trim_blocks=True, lstrip_blocks=True)


def _render(template, strict=True, **context):
    return _env(strict).from_string(template).render(**context).strip()


# ------------------------------------------------------------------ alias format matching
# st2's behaviour (st2common/models/utils/action_alias_utils.py), re-implemented:
# * trailing ``key=value`` pairs (value: '...', "...", {...} or one word) are cut off the command
#   and become parameters, overriding anything the format extracted;
# * a format is a regular expression in which ``{{ name }}`` is a required value and
#   ``{{ name = default }}`` an optional one (the whitespace before it optional too); a value is
#   optionally quoted (quotes stripped), a {...} object, or the shortest text that lets the rest
#   of the format match;
# * the format is anchored at both ends unless it has anchors; the command is padded with a space
#   on each side; a command matching no format, or two formats of any aliases, is an error.
_VALUE = r"""'[^']*'|"[^"]*"|\{.*?\}|\S+"""
_TRAILING_PAIRS = re.compile(r"^(.*?)((?:\s+[^\s=]+=(?:%s))*)\s*$" % _VALUE, re.DOTALL)
_PAIR = re.compile(r"([^\s=]+)=(%s)" % _VALUE, re.DOTALL)
_PLACEHOLDER = re.compile(r"(\s*)\{\{\s*(\S+?)\s*(?:=\s*(.*?)\s*)?\}\}", re.DOTALL)


def _unquote(text):
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def format_regex(fmt):
    """(compiled regex, {optional name: default}) for one alias format string."""
    defaults = {}

    def placeholder(match):
        space, name, default = match.groups()
        value = (r"""["']?(?P<%s>(?<=')[^']+?(?=')|(?<=")[^"]+?(?=")|\{.+?\}|.+?)["']?"""
                 % name)
        if default is None:
            return re.escape(space) + value
        defaults[name] = _unquote(default)
        return "(?:%s%s)?" % (re.escape(space), value)

    pattern = _PLACEHOLDER.sub(placeholder, fmt)
    if not pattern.startswith("^"):
        pattern = r"^\s*" + pattern
    if not pattern.endswith("$"):
        pattern += r"\s*$"
    return re.compile(pattern, re.DOTALL), defaults


def parse_command(fmt, command):
    """The parameters ``command`` gives under alias format ``fmt``, or None if it does not match."""
    head, tail = _TRAILING_PAIRS.match(command).groups()
    regex, defaults = format_regex(fmt)
    match = regex.search(" %s " % head)
    if not match:
        return None
    params = match.groupdict()
    for name, default in defaults.items():
        params[name] = params.get(name) or default
    params.update((key, _unquote(value)) for key, value in _PAIR.findall(tail))
    if fmt and not (head.strip() or any(params.values())):
        return None
    return params


def representations(alias):
    """Every format string st2 matches commands against (display-only formats match nothing)."""
    found = []
    for fmt in alias.get("formats") or []:
        if isinstance(fmt, str):
            found.append(fmt)
        else:
            rep = fmt.get("representation") or []
            found.extend([rep] if isinstance(rep, str) else rep)
    return found


def matching_formats(command):
    return [(name, fmt, params) for name, alias in sorted(ALIASES.items())
            for fmt in representations(alias)
            for params in [parse_command(fmt, command)] if params is not None]


def test_matcher_follows_st2_behaviour():
    assert parse_command("run {{ a }} on {{ b }}", "run x on y z") == {"a": "x", "b": "y z"}
    assert parse_command("get {{ a = 5 }}", "get") == {"a": "5"}
    assert parse_command("get {{ a = 5 }}", "get 7") == {"a": "7"}
    assert parse_command("get {{ a }}", "get 'x y' b=\"1 2\" c={\"k\": 1} d=w") == {
        "a": "x y", "b": "1 2", "c": '{"k": 1}', "d": "w"}
    assert parse_command("get {{ a }}", "get x a=y") == {"a": "y"}
    assert parse_command("get {{ a }}", "get") is None
    assert parse_command("get {{ a }}", "gets x") is None
    assert parse_command("get {{ a }}", "please get x") is None


# ------------------------------------------------------------------ example chat commands
# (command, alias file, parameters st2 extracts); at least two per alias, one with options
COMMANDS = [
    ("migrate volume %s" % VOL, "migrate_one_volume.yaml", {"volume_id": VOL}),
    ("migrate volume %s procedure=boot allow_in_use=true" % VOL, "migrate_one_volume.yaml",
     {"volume_id": VOL, "procedure": "boot", "allow_in_use": "true"}),
    ("migrate data volume %s mode=journal" % VOL, "migrate_one_volume.yaml",
     {"volume_id": VOL, "procedure": "data", "mode": "journal"}),
    ("migrate volumes %s,%s" % (VOL, VOL2), "migrate_volumes.yaml",
     {"volumes": "%s,%s" % (VOL, VOL2)}),
    ("migrate volumes %s, %s concurrency=1 dry_run=true" % (VOL, VOL2), "migrate_volumes.yaml",
     {"volumes": "%s, %s" % (VOL, VOL2), "concurrency": "1", "dry_run": "true"}),
    ("plan migration of volume %s" % VOL, "plan_migration.yaml", {"volume_id": VOL}),
    ("plan migration of volume %s mode=journal destination_project=tenant" % VOL,
     "plan_migration.yaml", {"volume_id": VOL, "mode": "journal",
                             "destination_project": "tenant"}),
    ("plan boot migration of volume %s" % VOL, "plan_boot_migration.yaml", {"volume_id": VOL}),
    ("plan boot migration of volume %s allow_in_use=true" % VOL, "plan_boot_migration.yaml",
     {"volume_id": VOL, "allow_in_use": "true"}),
    ("migration status of image volume-%s" % VOL, "migration_status.yaml",
     {"image": "volume-" + VOL}),
    ("migration status of image %s pool=osglance" % IMG, "migration_status.yaml",
     {"image": IMG, "pool": "osglance"}),
    ("approve gate %s" % INQUIRY, "approve_gate.yaml", {"inquiry_id": INQUIRY}),
    ("approve gate '%s'" % INQUIRY, "approve_gate.yaml", {"inquiry_id": INQUIRY}),
    ("reject gate %s" % INQUIRY, "reject_gate.yaml", {"inquiry_id": INQUIRY}),
    ("reject gate \"%s\"" % INQUIRY, "reject_gate.yaml", {"inquiry_id": INQUIRY}),
    ("migrate tenant tenant to tenant", "migrate_tenant.yaml",
     {"project": "tenant", "destination_project": "tenant"}),
    ("migrate tenant acme to acme-prod dry_run=true adopt=true", "migrate_tenant.yaml",
     {"project": "acme", "destination_project": "acme-prod", "dry_run": "true",
      "adopt": "true"}),
    ("migrate tenant team-7 as a new project passwords=random", "migrate_tenant.yaml",
     {"project": "team-7", "passwords": "random"}),
    ("migrate server %s" % SRV, "migrate_server.yaml", {"server_id": SRV}),
    ("migrate server %s dry_run=true max_rounds=5" % SRV, "migrate_server.yaml",
     {"server_id": SRV, "dry_run": "true", "max_rounds": "5"}),
    ("migrate servers %s,%s" % (SRV, SRV2), "migrate_servers.yaml",
     {"servers": "%s,%s" % (SRV, SRV2)}),
    ("migrate servers %s concurrency=1 dry_run=true" % SRV, "migrate_servers.yaml",
     {"servers": SRV, "concurrency": "1", "dry_run": "true"}),
    ("migrate whole tenant acme to acme-prod", "migrate_whole_tenant.yaml",
     {"project": "acme", "destination_project": "acme-prod"}),
    ("migrate whole tenant team-7 as a new project concurrency=3 passwords=random",
     "migrate_whole_tenant.yaml", {"project": "team-7", "concurrency": "3",
                                   "passwords": "random"}),
]
NOT_COMMANDS = ["migrate volume", "migrate volumes", "plan migration of volume", "approve gate",
                "approve gates", "reject the gate %s" % INQUIRY, "migration status of image",
                "migrate all volumes of tenant", "status of image volume-%s" % VOL,
                "migrate tenant acme", "migrate servers", "migrate whole tenant acme"]


def _cast_like_alias(action_params, params):
    """st2's casts of extracted strings before scheduling (arrays split on commas)."""
    cast = {}
    for name, value in params.items():
        kind = (action_params.get(name) or {}).get("type")
        if not isinstance(value, str):
            cast[name] = value
        elif kind == "array":
            cast[name] = [v.strip() for v in value.split(",")]
        elif kind == "boolean":
            cast[name] = ast.literal_eval(value.capitalize())
        elif kind == "integer":
            cast[name] = int(value)
        elif kind == "number":
            cast[name] = float(value)
        elif kind == "object":
            cast[name] = json.loads(value)
        else:
            cast[name] = value
    return cast


def execution_parameters(alias, params):
    """The parameters the execution gets: extracted, cast, plus the immutable ones; validated
    against the action's schema (unknown parameters rejected)."""
    action_params = ACTIONS[alias["action_ref"]].get("parameters") or {}
    values = _cast_like_alias(action_params, params)
    immutable = alias.get("immutable_parameters") or {}
    overridden = sorted(set(immutable) & set(values))
    assert not overridden, "st2 refuses to override immutable parameters %s" % overridden
    values.update(immutable)
    validate_like_st2(dict(values), params_to_object_schema(action_params))
    return values


@pytest.mark.parametrize("command,alias_file,expected", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_command_matches_exactly_one_format(command, alias_file, expected):
    matches = matching_formats(command)
    assert len(matches) == 1, "%r matches %d formats (st2: ambiguity error): %s" % (
        command, len(matches), [(m[0], m[1]) for m in matches])
    name, _, params = matches[0]
    assert name == alias_file
    assert params == expected
    execution_parameters(ALIASES[name], params)


@pytest.mark.parametrize("command", NOT_COMMANDS)
def test_incomplete_command_matches_nothing(command):
    assert matching_formats(command) == []


def test_every_alias_has_examples_with_and_without_options():
    for name, alias in ALIASES.items():
        examples = [(c, p) for c, a, p in COMMANDS if a == name]
        assert len(examples) >= 2, "%s: list at least two example commands" % name
        optional = [p for p in (ACTIONS[alias["action_ref"]].get("parameters") or {})
                    if p not in (alias.get("immutable_parameters") or {})
                    and not ACTIONS[alias["action_ref"]]["parameters"][p].get("required")]
        if optional:
            assert any(set(p) & set(optional) for _, p in examples), (
                "%s: no example passes an optional parameter" % name)
        for fmt in representations(alias):
            assert any(parse_command(fmt, c) is not None for c, _ in examples), (
                "%s: format %r has no example" % (name, fmt))


# ------------------------------------------------------------------ alias metadata
def test_pack_has_aliases():
    assert {"migrate_one_volume.yaml", "migrate_volumes.yaml", "plan_migration.yaml",
            "migration_status.yaml", "approve_gate.yaml", "reject_gate.yaml"} <= set(ALIASES)


@pytest.mark.parametrize("path", ALIAS_FILES, ids=_ids(ALIAS_FILES))
def test_alias_metadata(path):
    alias = ALIASES[os.path.basename(path)]
    assert not set(alias) - ALIAS_KEYS, "keys st2 rejects: %s" % sorted(set(alias) - ALIAS_KEYS)
    for key in ("name", "pack", "action_ref", "description", "formats", "ack", "result"):
        assert alias.get(key), "%s is missing %s" % (path, key)
    assert alias["name"] == os.path.splitext(os.path.basename(path))[0]
    assert alias["pack"] == PACK_NAME
    assert alias["action_ref"] in ACTIONS, "no action %s in actions/" % alias["action_ref"]
    assert alias["ack"].get("enabled") is True and isinstance(alias["ack"].get("format"), str)
    assert isinstance(alias["result"].get("format"), str)
    for fmt in alias["formats"]:
        assert isinstance(fmt, str) or (set(fmt) <= {"display", "representation"} and
                                        isinstance(fmt.get("representation", []), list))


@pytest.mark.parametrize("path", ALIAS_FILES, ids=_ids(ALIAS_FILES))
def test_alias_parameters_belong_to_the_action(path):
    alias = ALIASES[os.path.basename(path)]
    action_params = ACTIONS[alias["action_ref"]].get("parameters") or {}
    immutable = alias.get("immutable_parameters") or {}
    named = set(immutable)
    for fmt in representations(alias):
        placeholders = [m.group(2) for m in _PLACEHOLDER.finditer(fmt)]
        assert placeholders, "format %r takes no parameter" % fmt
        assert not set(placeholders) & set(immutable), "%r sets an immutable parameter" % fmt
        named.update(placeholders)
    for fmt in alias["formats"]:
        if isinstance(fmt, dict):  # [key=value] options advertised in the help text
            named.update(re.findall(r"\[(\w+)=", fmt.get("display", "")))
    unknown = sorted(named - set(action_params))
    assert not unknown, "%s: not parameters of %s: %s" % (path, alias["action_ref"], unknown)
    required = {n for n, s in action_params.items() if s.get("required") and "default" not in s}
    for fmt in representations(alias):
        given = set(m.group(2) for m in _PLACEHOLDER.finditer(fmt)) | set(
            alias.get("immutable_parameters") or {})
        assert required <= given, "%r never supplies %s" % (fmt, sorted(required - given))
    validate_like_st2(dict(immutable), params_to_object_schema(
        {n: {k: v for k, v in action_params[n].items() if k != "required"} for n in immutable}))


# ------------------------------------------------------------------ alias ack and result
def _execution(action_ref, parameters, status="succeeded", result=None):
    """An execution as chatops.format_execution_result sees it (execution.to_dict())."""
    meta = ACTIONS[action_ref]
    return {"id": EXECUTION, "status": status, "parameters": parameters,
            "action": {"ref": action_ref, "name": meta["name"], "pack": PACK_NAME},
            "runner": {"name": meta["runner_type"]}, "result": result,
            "web_url": "https://st2.example.org/#/history/%s/general" % EXECUTION,
            "start_timestamp": "2024-06-01T02:00:00.000000Z",
            "end_timestamp": "2024-06-01T02:41:07.000000Z", "elapsed_seconds": 2467.0}


def _python_result(result):
    return {"result": result, "stdout": "", "stderr": "", "exit_code": 0}


CHECKS = [{"check": "source image exists", "ok": True, "detail": {"size": 10737418240}},
          {"check": "pools are mirrored to the destination", "ok": True, "detail": True},
          {"check": "destination name is free", "ok": True,
           "detail": "cinder-ceph-pa1-cl1/volume-%s is free" % VOL}]
STAGES = ["preflight", "gate: Ceph admin approves mirroring",
          "enable mirroring (snapshot, no feature change)", "verify content (sha256)"]
NEW_VOLUME = {"volume_id": NEW_VOL, "name": "db-data", "size_gib": 10, "status": "available",
              "project_id": "p1", "volume_type": "ceph", "bootable": False, "metadata": {},
              "rbd_image": "cinder-ceph-pa1-cl1/volume-" + NEW_VOL, "changed": True}
VERIFIED = {"changed": True, "verified": True, "sha256": SHA, "bytes": 10737418240,
            "seconds": 41.2, "mb_per_second": 260.6}


def _item(volume_id, ok=True):
    if ok:
        return {"volume_id": volume_id, "procedure": "data", "status": "succeeded",
                "outcome": "migrated, verified and cleaned up; the source image is kept",
                "volume": NEW_VOLUME, "verified": VERIFIED}
    return {"volume_id": volume_id, "procedure": "boot", "status": "failed",
            "outcome": "rejected by the Ceph admin before mirroring; nothing was changed",
            "volume": None, "verified": None}


def _server_line(server_id, ok=True):
    """One line of migrate_servers' result: the server's migrate_server output."""
    if ok:
        return {"server_id": server_id, "status": "succeeded", "execution_id": EXECUTION,
                "outcome": "migrated as %s in a 16.5 s window" % NEW_SRV,
                "destination_server": {"server_id": NEW_SRV},
                "downtime": {"seconds": 16.5}, "resume": None, "undo": None}
    return {"server_id": server_id, "status": "failed", "execution_id": EXECUTION,
            "outcome": "failed at create: the destination server x is in ERROR",
            "destination_server": None, "downtime": None,
            "resume": "st2 run ceph_migrate.migrate_server server_id=" + server_id,
            "undo": "st2 run ceph_migrate.rollback_server server_id=" + server_id}


def _plan(ok=True):
    checks = CHECKS + ([] if ok else [{"check": "volume type is not encrypted", "ok": False,
                                       "detail": "volume type encrypted is encrypted"}])
    return {"ok": ok, "checks": checks, "plan": {"volume_id": VOL, "stages": STAGES},
            "warnings": ["the volume is bootable: migrate_boot_volume (through Glance) keeps it "
                         "bootable for new servers; the data procedure keeps the flag too"],
            "volume": {"id": VOL, "name": "db-data"}, "destination_project": {"id": "p1"},
            "already_migrated": None}


MIRROR_STATUS = {"in_sync": False, "mode": "snapshot",
                 "detail": "copying mirror snapshot 12 (512/2560 objects)", "percent": 20.0,
                 "status": {"image": "volume-" + VOL, "global_id": IMG, "state": "up+replaying",
                            "phase": "syncing", "mode": "snapshot", "description": "replaying",
                            "reports_in_sync": False, "percent": 20.0,
                            "bytes_per_second": 52428800.0, "eta_seconds": 4000.0,
                            "entries_behind": None, "last_update": "2024-06-01T02:10:00Z"}}

# alias file -> [(execution status, action result, facts the chat message must show)]
TENANT_SUMMARY = {"created": 3, "updated": 1, "adopted": 1, "unchanged": 0, "conflict": 0}
RESULT_CASES = {
    "migrate_server.yaml": [
        ("succeeded", {"output": {
            "outcome": "migrated as %s in a 16.5 s window (from the stop request to the server "
                       "ACTIVE at the destination); the source server is kept, stopped and "
                       "locked" % NEW_SRV,
            "downtime": {"seconds": 16.5, "stop": 4.0, "final_sync": 2.5, "register": 1.5,
                         "manage": None, "create": 2.0, "bytes": 3 << 20},
            "left_changed": [], "resume": None, "undo": None}},
         ["Server %s: succeeded" % SRV, "migrated as " + NEW_SRV, "window 16.5 s",
          "last delta 2.5 s (3.0 MiB)", "root image 1.5 s", "server up 2.0 s"]),
        ("failed", {"output": {
            "outcome": "failed at create: the destination server x is in ERROR: No valid host",
            "downtime": None, "left_changed": ["the source server is stopped"],
            "resume": "st2 run ceph_migrate.migrate_server server_id=" + SRV,
            "undo": "st2 run ceph_migrate.rollback_server server_id=" + SRV}},
         ["failed at create", "Left changed: the source server is stopped",
          "Resume: `st2 run ceph_migrate.migrate_server server_id=%s`" % SRV,
          "Undo: `st2 run ceph_migrate.rollback_server server_id=%s`" % SRV])],
    "migrate_tenant.yaml": [
        ("succeeded", {"output": {"outcome": "migrated and compared clean: done: ...",
                                  "summary": TENANT_SUMMARY, "differences": []}},
         ["Tenant tenant -> tenant: succeeded", "migrated and compared clean", "3 created",
          "1 adopted"]),
        ("failed", {"output": {"outcome": "the destination differs from the export in 1 "
                                          "place(s) (see differences)",
                               "summary": TENANT_SUMMARY,
                               "differences": [{"kind": "network", "name": "app",
                                                "param": "mtu", "missing": False}]}},
         ["failed", "differs from the export in 1 place", "differs: network app mtu"])],
    "migrate_servers.yaml": [
        ("failed", {"output": {
            "outcome": "1 of 2 servers done; failed: " + SRV2,
            "results": [_server_line(SRV), _server_line(SRV2, ok=False)],
            "migrated": [SRV], "failed": [SRV2]}},
         ["Servers failed", "1 of 2 servers done", SRV, NEW_SRV, "16.5 s", SRV2,
          "failed at create: the destination server", "resume: `st2 run "
          "ceph_migrate.migrate_server server_id=%s`" % SRV2]),
        ("failed", {"output": {"outcome": "the batch broke off (an item's workflow could not "
                                          "run)", "results": [_server_line(SRV), None]}},
         ["broke off", SRV])],
    "migrate_whole_tenant.yaml": [
        ("succeeded", {"output": {
            "outcome": "the tenant crossed and compared clean",
            "report": "infrastructure: done\nservers: 1 of 1 servers done\n  server %s: down "
                      "16.5 s (stop 4.0 s, final sync 2.5 s)\ncompared clean" % SRV,
            "differences": [], "skipped_volumes": [
                {"id": VOL2, "name": "scratch", "why": "it is error (neither available nor "
                                                       "attached)"}],
            "undo": ["st2 run ceph_migrate.rollback_server server_id=" + SRV]}},
         ["Whole tenant acme: succeeded", "compared clean", "server %s: down 16.5 s" % SRV,
          "not taken: volume %s scratch (it is error" % VOL2]),
        ("failed", {"output": {
            "outcome": "1 server(s) failed: " + SRV, "report": "servers: 0 of 1 servers done",
            "differences": [{"kind": "server", "name": "web", "param": "power_state"}],
            "undo": ["st2 run ceph_migrate.rollback_server server_id=" + SRV,
                     "st2 run ceph_migrate.rollback_tenant source_project_id=p1"]}},
         ["failed", "differs: server web power_state", "Undo, in this order:",
          "`st2 run ceph_migrate.rollback_tenant source_project_id=p1`"])],
    "migrate_one_volume.yaml": [
        ("succeeded", {"output": _item(VOL)},
         [VOL, "succeeded", "data procedure", "migrated, verified", NEW_VOL, "10 GiB", SHA]),
        ("succeeded", {"output": dict(_item(VOL), verified={
            "changed": True, "verified": True, "digest": SHA, "bytes": 10737418240,
            "snapshot": "ceph_migrate-sync-3", "since": "ceph_migrate-sync-2"})},
         [VOL, "succeeded", "Verified: content digest " + SHA, "the changes since "
          "ceph_migrate-sync-2 inside it"]),
        ("succeeded", {"output": _item(VOL, ok=False)},
         [VOL, "failed", "rejected by the Ceph admin"]),
        ("succeeded", {"output": dict(
            _item(VOL, ok=False), outcome="failed at manage_volume: Cinder said no",
            left_changed=["mirroring of volume-%s is on (its replica is at the destination)"
                          % VOL],
            resume="st2 run ceph_migrate.migrate_volume volume_id=" + VOL,
            undo="st2 run ceph_migrate.rollback volume_id=%s procedure=data" % VOL)},
         [VOL, "failed at manage_volume", "Left changed: mirroring of volume-%s is on" % VOL,
          "Resume: `st2 run ceph_migrate.migrate_volume volume_id=%s`" % VOL,
          "Undo: `st2 run ceph_migrate.rollback volume_id=%s procedure=data`" % VOL])],
    "migrate_volumes.yaml": [
        ("failed", {"output": {"outcome": "1 of 2 volumes done; failed: " + VOL2,
                               "results": [_item(VOL), _item(VOL2, ok=False)],
                               "migrated": [VOL], "failed": [VOL2]}},
         ["Batch failed", "1 of 2 volumes done", VOL, VOL2, NEW_VOL, "succeeded", "rejected"]),
        ("failed", {"output": {"outcome": "the batch broke off (an item's workflow could not "
                                          "run)", "results": [_item(VOL), None]}},
         ["broke off", VOL])],
    "plan_migration.yaml": [
        ("succeeded", {"output": {"outcome": "dry run, nothing was changed", "plan": _plan(),
                                  "volume": None, "verified": None, "copied": None}},
         [VOL, "all checks pass", "dry run", "[ok] destination name is free: cinder-ceph",
          "warning: the volume is bootable", "1. preflight", "4. verify content"]),
        ("failed", {"output": {"outcome": "preflight failed, nothing was changed",
                               "plan": _plan(ok=False), "volume": None, "verified": None,
                               "copied": None}},
         ["BLOCKED", "preflight failed", "[FAIL] volume type is not encrypted: volume type"])],
    "plan_boot_migration.yaml": [
        ("succeeded", {"output": {"outcome": "dry run, nothing was changed", "plan": _plan(),
                                  "uploaded": None, "registered": None, "volume": None,
                                  "verified": None, "copied": None}},
         [VOL, "all checks pass", "[ok] source image exists", "2. gate: Ceph admin"]),
        ("failed", {"output": {"outcome": "preflight failed, nothing was changed",
                               "plan": {"error": "source volume %s: not found" % VOL,
                                        "error_type": "NotFound"}}},
         ["BLOCKED", "preflight failed", "error: source volume"])],
    "migration_status.yaml": [
        ("succeeded", _python_result(MIRROR_STATUS),
         ["volume-" + VOL, "not in sync yet", "snapshot mode", "512/2560 objects", "20.0%",
          "52.4 MB/s", "ETA 1h06m"]),
        ("succeeded", _python_result(dict(MIRROR_STATUS, in_sync=True, status=None,
                                          detail="mirror snapshot 12 complete on the replica")),
         ["IN SYNC", "complete on the replica"]),
        ("failed", _python_result({"error": "image oscinder/volume-%s does not exist" % VOL,
                                   "error_type": "NotFound"}),
         ["Could not check", "does not exist"])],
    "approve_gate.yaml": [
        ("succeeded", _python_result({"inquiry_id": INQUIRY, "approved": True,
                                      "response": {"approved": True}}),
         [INQUIRY, "approved", "goes on"]),
        ("failed", _python_result({"inquiry_id": INQUIRY, "approved": True,
                                   "error": "could not answer gate: 403 Forbidden"}),
         ["Could not answer gate " + INQUIRY, "403 Forbidden"])],
    "reject_gate.yaml": [
        ("succeeded", _python_result({"inquiry_id": INQUIRY, "approved": False,
                                      "response": {"approved": False}}),
         [INQUIRY, "rejected", "stops"]),
        ("failed", _python_result({"inquiry_id": INQUIRY, "approved": False,
                                   "error": "inquiry has expired"}),
         ["Could not answer gate", "expired"])],
}


def test_every_alias_has_result_cases():
    assert set(RESULT_CASES) == set(ALIASES)


@pytest.mark.parametrize("command,alias_file,params", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_ack_renders(command, alias_file, params):
    alias = ALIASES[alias_file]
    execution = _execution(alias["action_ref"], execution_parameters(alias, params),
                           status="requested")
    text = _render(alias["ack"]["format"], execution=execution, actionalias=alias)
    assert EXECUTION in text
    for value in params.values():
        if alias_file in ("migrate_volumes.yaml", "migrate_servers.yaml") and "," in value:
            assert "2 volume(s)" in text or "2 server(s)" in text
        elif value in (VOL, INQUIRY, "volume-" + VOL, IMG):
            assert value in text, "ack %r does not name %s" % (text, value)


@pytest.mark.parametrize("alias_file", sorted(RESULT_CASES))
def test_result_renders_the_key_facts(alias_file):
    alias = ALIASES[alias_file]
    params = execution_parameters(alias, [p for c, a, p in COMMANDS if a == alias_file][0])
    for status, result, facts in RESULT_CASES[alias_file]:
        execution = _execution(alias["action_ref"], params, status, result)
        text = _render(alias["result"]["format"], execution=execution, alias=alias)
        for fact in facts:
            assert fact in text, "%s result lacks %r:\n%s" % (alias_file, fact, text)
        assert "None" not in text and "Undefined" not in text, text


@pytest.mark.parametrize("alias_file", sorted(RESULT_CASES))
@pytest.mark.parametrize("result", [None, {}, {"errors": [{"message": "boom"}]},
                                    _python_result(None)], ids=["none", "empty", "errors", "null"])
def test_result_renders_when_the_execution_broke(alias_file, result):
    alias = ALIASES[alias_file]
    params = execution_parameters(alias, [p for c, a, p in COMMANDS if a == alias_file][0])
    execution = _execution(alias["action_ref"], params, "failed", result)
    text = _render(alias["result"]["format"], strict=False, execution=execution, alias=alias)
    assert text and ("failed" in text or "BLOCKED" in text or "Could not" in text), text


# ------------------------------------------------------------------ rules: trigger payloads
def _status_line(name, state, description, last_update="2024-06-01 02:10:00"):
    return {"name": name, "global_id": IMG, "state": state, "description": description,
            "last_update": last_update}


def _mirror_events():
    """Real payloads: the recorded rbd status fixtures (renamed after a Cinder volume and a
    Glance image) and an error, through the sensor's MirrorWatch, with stalls forced."""
    clock = [0.0]
    watch = MirrorWatch(stall_seconds=60, clock=lambda: clock[0])
    events = []
    fixtures = os.path.join(PACK_DIR, "tests", "fixtures", "rbd-status")
    for index, path in enumerate(sorted(glob.glob(os.path.join(fixtures, "*.jsonl")))):
        name = "volume-" + VOL if index % 2 else IMG
        with open(path) as handle:
            lines = [dict(json.loads(line), name=name) for line in handle if line.strip()]
        for line in lines + [lines[-1]]:
            events.extend(watch.update("oscinder", [MirrorStatus.from_json(line)]))
            clock[0] += 100
    error = _status_line("volume-" + VOL2, "up+error", "failed to bootstrap: (2) No such file")
    events.extend(watch.update("oscinder", [MirrorStatus.from_json(error)]))
    return [("%s.%s" % (PACK_NAME, kind), payload) for kind, payload in events]


MIRROR_EVENTS = _mirror_events()


def _one(trigger, **changes):
    payload = next(p for t, p in MIRROR_EVENTS if t == trigger)
    assert set(changes) <= set(payload), "not a key of %s: %s" % (trigger, set(changes))
    return dict(payload, **changes)


def _actiontrigger(action, status, result, **parameters):
    # st2actions/notifier/notifier.py _post_generic_trigger
    ref = "%s.%s" % (PACK_NAME, action)
    return {"execution_id": EXECUTION, "status": status, "start_timestamp": "2024-06-01",
            "action_name": ref, "action_ref": ref, "runner_ref": "orquesta",
            "parameters": parameters, "result": result}


PROGRESS = PACK_NAME + ".mirror_progress"
SYNCED = PACK_NAME + ".mirror_synced"
STALLED = PACK_NAME + ".mirror_stalled"
ERRORED = PACK_NAME + ".mirror_error"
# trigger -> [(payload, facts the message shows, whether the rule's criteria must match)]
TRIGGER_CASES = {
    PROGRESS: [
        (_one(PROGRESS, volume_id=VOL, image_id=None, image="volume-" + VOL, phase="syncing",
              percent=42.4, bytes_per_second=52428800.0, eta_seconds=4000.0),
         ["volume " + VOL, "oscinder/volume-" + VOL, "syncing 42%", "52.4 MB/s", "ETA 1h06m"],
         True),
        (_one(PROGRESS, volume_id=None, image_id=IMG, image=IMG, phase="bootstrapping",
              percent=None, bytes_per_second=None, eta_seconds=75.0),
         ["Glance image " + IMG, "bootstrapping", "ETA 1m15s"], True)],
    SYNCED: [(_one(SYNCED, volume_id=VOL, image="volume-" + VOL),
              ["volume " + VOL, "in sync", "mirroring"], True)],
    STALLED: [
        (_one(STALLED, volume_id=VOL, stalled=True, reason="no progress for 600s", percent=42.0),
         ["STALLED", "volume " + VOL, "no progress for 600s", "42%"], True),
        (_one(STALLED, stalled=False, reason="progressing again"), ["progressing again"], True)],
    ERRORED: [(_one(ERRORED), ["MIRROR ERROR", "volume " + VOL2, "failed to bootstrap"], True)],
    PACK_NAME + ".image_status": [
        (image_payload("destination", "image.activate", IMG, "boot-disk", "active", "p1", VOL),
         ["[destination]", "Glance image " + IMG, "boot-disk", "active", VOL], True),
        (image_payload("source", "image.upload", IMG, "boot-disk", "saving", "p1", VOL,
                       "image upload failed: quota"),
         ["ERROR", "quota"], True)],
    PACK_NAME + ".volume_status": [
        (volume_payload("destination", "volume.manage_existing.end", NEW_VOL, "db-data",
                        "available", "p1", 10, VOL),
         ["[destination]", "volume " + NEW_VOL, "db-data", "10 GiB", "available", VOL], True),
        (volume_payload("destination", "volume.create.error", NEW_VOL, None, "error", "p1",
                        None, VOL, "No valid backend"),
         ["ERROR", "No valid backend"], True)],
    "core.st2.generic.actiontrigger": [
        (_actiontrigger("migrate_volume", "succeeded", {"output": _item(VOL)}, volume_id=VOL),
         ["migrate_volume succeeded", "volume " + VOL, "migrated, verified", NEW_VOL,
          EXECUTION], True),
        (_actiontrigger("migrate_batch", "failed", {"output": {"outcome": "1 of 2 volumes done; "
                                                                          "failed: " + VOL2}},
                        volumes=[VOL, VOL2], dry_run=True),
         ["migrate_batch failed", "2 volume(s)", "(dry run)", "failed: " + VOL2], True),
        (_actiontrigger("rollback", "failed", {"errors": [{"message": "boom"}]}, volume_id=VOL),
         ["rollback failed", "no outcome reported"], True),
        (_actiontrigger("describe_volume", "succeeded", {"result": {}}, volume_id=VOL), [],
         False),
        (_actiontrigger("migrate_batch_item", "succeeded", {"output": _item(VOL)}), [], False)],
    "core.st2.generic.inquiry": [
        ({"id": INQUIRY, "route": "ceph_admin"},
         ["ceph admin", "approve gate " + INQUIRY, "reject gate " + INQUIRY], True),
        ({"id": INQUIRY, "route": "some_other_pack"}, [], False)],
    "core.st2.CronTimer": [
        ({"executed_at": "2024-06-01 02:00:00+00:00", "schedule": None}, [], True)],
}


def test_mirror_events_cover_every_mirror_trigger():
    assert {t for t, _ in MIRROR_EVENTS} == {PROGRESS, SYNCED, STALLED, ERRORED}


def test_sample_payloads_match_the_sensor_schemas():
    assert SENSOR_TRIGGERS, "no trigger types found in sensors/*.yaml"
    for trigger, cases in TRIGGER_CASES.items():
        if trigger in DOCUMENTED_PACK_TRIGGERS:
            assert trigger in SENSOR_TRIGGERS, "no sensor declares %s" % trigger
            payloads = [p for p, _, _ in cases] + [p for t, p in MIRROR_EVENTS if t == trigger]
            for payload in payloads:
                validate_like_st2(dict(payload), SENSOR_TRIGGERS[trigger])


# ------------------------------------------------------------------ rules
class _Datastore(object):
    """``st2kv.system`` in a rule: attribute lookups, a missing key renders as ''."""

    def __init__(self, values):
        self._values = values

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Value(self._values.get(name, ""))


class _Value(object):
    def __init__(self, value):
        self.value = value

    def __str__(self):
        return self.value


def render_parameters(parameters, payload, datastore=None):
    context = {"trigger": payload, "st2kv": {"system": _Datastore(datastore or {})}}
    rendered = {}
    for name, value in parameters.items():
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            value = _render(value, **context)
        rendered[name] = value
    return rendered


def _lookup(payload, key):
    value = {"trigger": payload}
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def criteria_match(criteria, payload):
    """The operators the pack's rules use, as st2common/operators.py defines them."""
    checks = {"eq": lambda v, p: v == p, "neq": lambda v, p: v != p,
              "in": lambda v, p: v in p, "nin": lambda v, p: v not in p,
              "exists": lambda v, p: v is not None, "nexists": lambda v, p: v is None,
              "contains": lambda v, p: p in v, "regex": lambda v, p: re.match(p, v)}
    return all(checks[c["type"]](_lookup(payload, key), c.get("pattern"))
               for key, c in criteria.items())


def _target_parameters(ref):
    return POST_MESSAGE_PARAMETERS if ref == "chatops.post_message" else (
        ACTIONS[ref].get("parameters") or {})


def _cast_like_rule(schema, values):
    """st2 casts rendered strings to the parameter's type (arrays and objects from JSON)."""
    cast = dict(values)
    for name, value in values.items():
        kind = (schema.get(name) or {}).get("type")
        if isinstance(value, str) and kind in ("array", "object"):
            cast[name] = json.loads(value)
    return cast


@pytest.mark.parametrize("path", RULE_FILES, ids=_ids(RULE_FILES))
def test_rule_metadata(path):
    rule = RULES[os.path.basename(path)]
    assert not set(rule) - RULE_KEYS, "keys st2 rejects: %s" % sorted(set(rule) - RULE_KEYS)
    assert rule["name"] == os.path.splitext(os.path.basename(path))[0]
    assert rule["pack"] == PACK_NAME and rule.get("description")
    assert rule.get("enabled") is False, "rules ship disabled"
    trigger = rule["trigger"]["type"]
    assert trigger in PACK_TRIGGERS | CORE_TRIGGERS, "nobody emits %s" % trigger
    assert trigger in TRIGGER_CASES, "no sample payload for %s" % trigger
    ref = rule["action"]["ref"]
    assert ref == "chatops.post_message" or ref in ACTIONS, "no action %s" % ref
    assert set(rule["action"]) <= {"ref", "parameters"}
    for key, criterion in (rule.get("criteria") or {}).items():
        assert key.startswith("trigger."), key
        assert criterion.get("type") in OPERATORS, criterion
        assert "pattern" in criterion or criterion["type"] in ("exists", "nexists")
        for payload, _, _ in TRIGGER_CASES[trigger]:
            _lookup(payload, key)  # the criteria look at a key the payload has


@pytest.mark.parametrize("path", RULE_FILES, ids=_ids(RULE_FILES))
def test_rule_renders_on_payloads(path):
    rule = RULES[os.path.basename(path)]
    trigger, ref = rule["trigger"]["type"], rule["action"]["ref"]
    schema = params_to_object_schema(_target_parameters(ref))
    cases = list(TRIGGER_CASES[trigger]) + [
        (p, [], True) for t, p in MIRROR_EVENTS if t == trigger]
    for payload, facts, fires in cases:
        assert criteria_match(rule.get("criteria") or {}, payload) is fires, payload
        if not fires:
            continue
        values = render_parameters(rule["action"].get("parameters") or {}, payload,
                                   {"ceph_migrate_maintenance_volumes": json.dumps([VOL, VOL2])})
        cleaned = validate_like_st2(_cast_like_rule(_target_parameters(ref), values), schema)
        if ref == "chatops.post_message":
            text = cleaned["message"]
            assert text and "None" not in text and "  " not in text, text
            for fact in facts:
                assert fact in text, "%s message lacks %r: %s" % (path, fact, text)


@pytest.mark.parametrize("path", [p for p in RULE_FILES if RULES[os.path.basename(p)]
                                  ["action"]["ref"] == "chatops.post_message"],
                         ids=lambda p: os.path.basename(p))
def test_chat_channel_comes_from_the_datastore(path):
    parameters = RULES[os.path.basename(path)]["action"]["parameters"]
    payload = TRIGGER_CASES[RULES[os.path.basename(path)]["trigger"]["type"]][0][0]
    assert render_parameters(parameters, payload)["channel"] == "ceph-migrate"
    assert render_parameters(parameters, payload, {"ceph_migrate_chat_channel": "#storage-ops"}
                             )["channel"] == "#storage-ops"


def test_rules_cover_every_event():
    triggers = {rule["trigger"]["type"] for rule in RULES.values()}
    assert DOCUMENTED_PACK_TRIGGERS | {"core.st2.generic.actiontrigger",
                                       "core.st2.CronTimer"} <= triggers
    watched = set()
    for rule in RULES.values():
        if rule["trigger"]["type"] == "core.st2.generic.actiontrigger":
            watched.update(rule["criteria"]["trigger.action_ref"]["pattern"])
    assert watched == {PACK_NAME + "." + n for n in (
        "migrate_volume", "migrate_boot_volume", "migrate_batch", "rollback")}


def test_maintenance_batch_rule():
    rule = RULES["scheduled_maintenance_batch.yaml"]
    timer = rule["trigger"]["parameters"]
    assert set(timer) <= set(CRON_RANGES) | {"timezone"} and timer["timezone"] == "UTC"
    for key, value in timer.items():
        if key == "day_of_week" and isinstance(value, str):
            assert value in WEEKDAYS
        elif key != "timezone":
            low, high = CRON_RANGES[key]
            assert isinstance(value, int) and low <= value <= high, (key, value)
    assert "JSON list" in rule["description"]
    values = render_parameters(rule["action"]["parameters"], {},
                               {"ceph_migrate_maintenance_volumes": '["%s"]' % VOL})
    cleaned = validate_like_st2(
        _cast_like_rule(ACTIONS[rule["action"]["ref"]]["parameters"], values),
        params_to_object_schema(ACTIONS[rule["action"]["ref"]]["parameters"]))
    assert cleaned["volumes"] == [VOL] and cleaned["dry_run"] is False
    with pytest.raises(jsonschema.ValidationError):   # an empty list is refused, not run
        validate_like_st2(_cast_like_rule(ACTIONS[rule["action"]["ref"]]["parameters"],
                                          render_parameters(rule["action"]["parameters"], {}, {
                                              "ceph_migrate_maintenance_volumes": "[]"})),
                          params_to_object_schema(ACTIONS[rule["action"]["ref"]]["parameters"]))


# ------------------------------------------------------------------ respond_gate
@pytest.fixture
def fake_st2client(monkeypatch):
    """A stand-in st2client whose Client records the calls (respond raises ``error`` if set)."""
    calls = {"clients": [], "responds": [], "error": None,
             "own": {"user": "tenant-admin"},              # respond_gate's execution context
             "gate": {"route": "ceph_admin", "context": {"user": "st2admin"}}}

    class Inquiries(object):
        def respond(self, inquiry_id, inquiry_response, **kwargs):
            calls["responds"].append((inquiry_id, inquiry_response))
            if calls["error"]:
                raise calls["error"]
            return types.SimpleNamespace(id=inquiry_id, response=inquiry_response)

    class Executions(object):
        def get_by_id(self, execution_id):
            if execution_id == "own-execution":
                return types.SimpleNamespace(id=execution_id, context=calls["own"])
            assert execution_id == INQUIRY
            return types.SimpleNamespace(id=execution_id, context=calls["gate"]["context"],
                                         parameters={"route": calls["gate"]["route"]})

    class Client(object):
        def __init__(self, api_url=None, token=None, **kwargs):
            calls["clients"].append({"api_url": api_url, "token": token})
            self.inquiries = Inquiries()
            self.executions = Executions()

    package = types.ModuleType("st2client")
    module = types.ModuleType("st2client.client")
    module.Client = Client
    package.client = module
    monkeypatch.setitem(sys.modules, "st2client", package)
    monkeypatch.setitem(sys.modules, "st2client.client", module)
    monkeypatch.setenv("ST2_ACTION_API_URL", "https://st2.example.org/api/v1")
    monkeypatch.setenv("ST2_ACTION_AUTH_TOKEN", "t0ken")
    monkeypatch.setenv("ST2_ACTION_EXECUTION_ID", "own-execution")
    return calls


@pytest.mark.parametrize("approved", [True, False])
def test_respond_gate_answers_the_inquiry(fake_st2client, approved):
    run = run_action("respond_gate", None, inquiry_id=INQUIRY, approved=approved)
    assert run.ok and run.result == {"inquiry_id": INQUIRY, "approved": approved,
                                     "response": {"approved": approved},
                                     "answered_by": "tenant-admin", "chat_user": None,
                                     "requested_by": "st2admin"}
    assert fake_st2client["clients"] == [{"api_url": "https://st2.example.org/api/v1",
                                          "token": "t0ken"}]
    assert fake_st2client["responds"] == [(INQUIRY, {"approved": approved})]
    alias = ALIASES["approve_gate.yaml" if approved else "reject_gate.yaml"]
    execution = _execution(alias["action_ref"], {"inquiry_id": INQUIRY, "approved": approved},
                           result=_python_result(run.result))
    text = _render(alias["result"]["format"], execution=execution)
    assert INQUIRY in text and ("approved" if approved else "rejected") in text


def test_respond_gate_reports_an_api_refusal(fake_st2client):
    fake_st2client["error"] = RuntimeError("403 Client Error: Forbidden (user is not allowed)")
    run = run_action("respond_gate", None, inquiry_id=INQUIRY, approved=True)
    assert not run.ok
    assert run.result["inquiry_id"] == INQUIRY and "Forbidden" in run.result["error"]


def test_respond_gate_without_st2client(monkeypatch):
    monkeypatch.setitem(sys.modules, "st2client", None)        # import fails like a missing one
    monkeypatch.setitem(sys.modules, "st2client.client", None)
    run = run_action("respond_gate", None, inquiry_id=INQUIRY, approved=False)
    assert not run.ok and run.result["error_type"] == "ImportError"
    assert "st2 inquiry respond %s -r '{\"approved\": false}'" % INQUIRY in run.result["error"]
    alias = ALIASES["reject_gate.yaml"]
    execution = _execution(alias["action_ref"], {"inquiry_id": INQUIRY, "approved": False},
                           "failed", _python_result(run.result))
    assert "st2 inquiry respond" in _render(alias["result"]["format"], execution=execution)


CHAT_APPROVALS = {"approvals": {"ceph_admin": {"users": ["bot"], "chat_users": ["carol"]},
                                "tenant_admin": {"users": ["bot"], "chat_users": ["tina", "tom"]}}}


@pytest.mark.parametrize("route,answering,asking,config,refusal", [
    # from chat: the chat user must be one of the gate's chat_users, whatever the bot may do
    ("ceph_admin", {"user": "bot", "api_user": "alice"}, {"user": "st2admin"}, CHAT_APPROVALS,
     "chat user 'alice' may not answer the ceph_admin gate (approvals.ceph_admin.chat_users: "
     "carol)"),
    ("tenant_admin", {"user": "bot", "api_user": "carol"}, {"user": "st2admin"}, CHAT_APPROVALS,
     "chat user 'carol' may not answer the tenant_admin gate"),
    ("ceph_admin", {"user": "bot", "api_user": "carol"}, {}, {},
     "(approvals.ceph_admin.chat_users: nobody, from chat)"),
    # whoever started the migration does not approve its own cutover
    ("tenant_admin", {"user": "bot", "api_user": "tina"}, {"user": "bot", "api_user": "tina"},
     CHAT_APPROVALS, "'tina' started this migration and may not approve its cutover too"),
    ("tenant_admin", {"user": "tenant-admin"}, {"user": "tenant-admin"}, {},
     "'tenant-admin' started this migration"),
    ("rogue", {"user": "bot"}, {}, CHAT_APPROVALS, "not a ceph_migrate gate"),
])
def test_respond_gate_refuses_who_may_not_answer_and_answers_nothing(
        fake_st2client, route, answering, asking, config, refusal):
    fake_st2client["own"], fake_st2client["gate"] = answering, {"route": route, "context": asking}
    run = run_action("respond_gate", config, inquiry_id=INQUIRY, approved=True)
    assert not run.ok and run.result["error_type"] == "RefusedError"
    assert refusal in run.result["error"], run.result["error"]
    assert fake_st2client["responds"] == []


@pytest.mark.parametrize("route,answering,asking,config", [
    ("ceph_admin", {"user": "bot", "api_user": "carol"}, {"user": "bot", "api_user": "carol"},
     CHAT_APPROVALS),                   # the Ceph admin's gates of a run they started: fine
    ("tenant_admin", {"user": "bot", "api_user": "tom"}, {"user": "bot", "api_user": "tina"},
     CHAT_APPROVALS),
    ("tenant_admin", {"user": "bot", "api_user": "tina"}, {"user": "bot", "api_user": "tina"},
     {"approvals": dict(CHAT_APPROVALS["approvals"], self_approval=True)}),
])
def test_respond_gate_lets_the_right_people_answer(fake_st2client, route, answering, asking,
                                                   config):
    fake_st2client["own"], fake_st2client["gate"] = answering, {"route": route, "context": asking}
    run = run_action("respond_gate", config, inquiry_id=INQUIRY, approved=True)
    assert run.ok, run.result
    assert run.result["chat_user"] == answering["api_user"]
    assert run.result["requested_by"] == asking["api_user"]
    assert fake_st2client["responds"] == [(INQUIRY, {"approved": True})]


def test_whoever_started_a_migration_may_still_reject_its_cutover(fake_st2client):
    fake_st2client["own"] = {"user": "bot", "api_user": "tina"}
    fake_st2client["gate"] = {"route": "tenant_admin", "context": {"api_user": "tina"}}
    run = run_action("respond_gate", CHAT_APPROVALS, inquiry_id=INQUIRY, approved=False)
    assert run.ok and fake_st2client["responds"] == [(INQUIRY, {"approved": False})]
