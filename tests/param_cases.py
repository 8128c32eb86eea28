"""Requested calls and what StackStorm 3.9 decides when an execution is requested
(POST /v1/executions, a workflow task, a subworkflow): accepted, or refused before anything runs.

One table for the local runner's checks (tests/test_runner_validation.py) and for a run against a
real StackStorm API, which must give the same verdicts. Refusals come from st2's casts (a value is
cast by its parameter's type first: "30" -> 30, "true" -> True, 5 for a string is a ValueError),
from the schema (runner parameters merged with the action's, defaults filled for absent or null
values, draft-3 ``required``, null allowed for an optional parameter but an enum is not widened,
unknown parameters refused) or from an immutable parameter given.

ACCEPTED calls really run on a real StackStorm, so each is harmless: read-only actions on a
volume or an image that does not exist, workflows with ``dry_run: true`` (the plan only, which
fails on the missing volume), bounded waits of 1 s. REFUSED calls never start, but they use the
same harmless names in case a verdict is ever wrong.
"""
from typing import Any, Dict, List, NamedTuple


class Case(NamedTuple):
    ref: str
    params: Dict[str, Any]          # JSON values, as POSTed
    accepted: bool
    why: str


NO_VOLUME = "0badc0de-0000-4000-8000-000000000000"      # no such Cinder volume anywhere
NO_IMAGE = "ceph-migrate-param-case-missing"             # no such RBD image anywhere
HARMLESS_READ = "harmless: read-only, on a name that does not exist"
HARMLESS_DRY = "harmless: dry run of a volume that does not exist (the plan fails)"
REFUSED = "refused before it runs"

PLAN = "ceph_migrate.plan_volume_migration"
MIGRATE = "ceph_migrate.migrate_volume"
BATCH = "ceph_migrate.migrate_batch"
GATES = "ceph_migrate.gate_approvers"
WAIT = "ceph_migrate.wait_for_sync"


def _dry(**params: Any) -> Dict[str, Any]:
    return dict({"volume_id": NO_VOLUME, "dry_run": True}, **params)


def _batch(**params: Any) -> Dict[str, Any]:
    return dict({"volumes": [NO_VOLUME], "dry_run": True}, **params)


CASES: List[Case] = [
    # -- python actions: runner parameters (python-script: timeout, env, debug, log_level, ...)
    Case(GATES, {}, True, "no parameters at all; harmless: only reads the pack config"),
    Case(GATES, {"timeout": 30}, True, "timeout is a python-script runner parameter (integer); "
         "harmless: reads the pack config"),
    Case(GATES, {"timeout": "30"}, True, "st2 casts a numeric string to the integer 30 before "
         "validating; harmless: reads the pack config"),
    Case(GATES, {"timeout": 1.5}, True, "st2 casts a number to an integer with int() (1); "
         "harmless: reads the pack config"),
    Case(GATES, {"timeout": "soon"}, False, "timeout as a non-numeric string: int('soon') fails "
         "in st2's cast (ValueError); " + REFUSED),
    Case(GATES, {"timeout": None}, True, "null for a runner parameter with a default: the "
         "default (600) is used; harmless: reads the pack config"),
    Case(GATES, {"log_level": "LOUD"}, False, "log_level enum violation; " + REFUSED),
    Case(GATES, {"log_level": "INFO"}, True, "log_level from its enum; harmless: reads config"),
    Case(GATES, {"env": ["A=1"]}, False, "env is an object, an array is given; " + REFUSED),
    Case(GATES, {"debug": "true"}, True, "the string 'true' is cast to a boolean by st2; "
         "harmless: reads the pack config"),
    Case(GATES, {"debug": "yes"}, False, "'yes' is no Python literal: st2's boolean cast fails "
         "(ValueError); " + REFUSED),
    Case(GATES, {"debug": 1}, False, "an integer is not cast to a boolean and 1 is not of type "
         "boolean; " + REFUSED),
    Case(GATES, {"volume_id": NO_VOLUME}, False, "unknown parameter (the action takes none; "
         "additionalProperties is false); " + REFUSED),
    # -- python actions: the action's own parameters
    Case(PLAN, {}, False, "required volume_id missing; " + REFUSED),
    Case(PLAN, {"volume_id": None}, False, "null for a required parameter without default; "
         + REFUSED),
    Case(PLAN, {"volume_id": 12345}, False, "integer for a string: st2's string cast refuses "
         "it (ValueError); " + REFUSED),
    Case(PLAN, {"volume_id": NO_VOLUME}, True, "required parameter only; " + HARMLESS_READ),
    Case(PLAN, {"volume_id": NO_VOLUME, "mode": None}, True, "null on an enum that lists null "
         "(the fix); " + HARMLESS_READ),
    Case(PLAN, {"volume_id": NO_VOLUME, "mode": "mirror"}, False, "enum violation; " + REFUSED),
    Case(PLAN, {"volume_id": NO_VOLUME, "allow_in_use": None}, True, "null for a boolean with a "
         "default: the default (false) is used; " + HARMLESS_READ),
    Case(PLAN, {"volume_id": NO_VOLUME, "allow_in_use": "false"}, True, "the string 'false' is "
         "cast to a boolean; " + HARMLESS_READ),
    Case(PLAN, {"volume_id": NO_VOLUME, "destination_project": None}, True, "null for an "
         "optional string without default (st2 makes it nullable); " + HARMLESS_READ),
    Case(PLAN, {"volume_id": NO_VOLUME, "destination_image": ["a"]}, False, "array for a "
         "string: st2's string cast refuses it; " + REFUSED),
    Case("ceph_migrate.image_info", {"image": NO_IMAGE, "cluster": None}, True, "null on an "
         "enum WITHOUT null but with a default: the default (source) fills it before "
         "validation; " + HARMLESS_READ),
    Case("ceph_migrate.image_info", {"image": NO_IMAGE, "cluster": "both"}, False, "enum "
         "violation; " + REFUSED),
    Case("ceph_migrate.mirror_status", {"image": NO_IMAGE, "pool": None}, True, "null for an "
         "optional string; " + HARMLESS_READ),
    Case(WAIT, {"image": NO_IMAGE, "timeout_seconds": 1}, True, "integer at its minimum; "
         "harmless: a 1 s bounded wait on an image that does not exist"),
    Case(WAIT, {"image": NO_IMAGE, "timeout_seconds": 0}, False, "below minimum 1; " + REFUSED),
    Case(WAIT, {"image": NO_IMAGE, "timeout_seconds": "0"}, False, "cast to 0, then below "
         "minimum 1; " + REFUSED),
    Case(WAIT, {"image": NO_IMAGE, "timeout_seconds": "one"}, False, "string for an integer: "
         "int('one') fails; " + REFUSED),
    Case("ceph_migrate.respond_gate", {"inquiry_id": "no-such-inquiry"}, False, "required "
         "approved missing; " + REFUSED),
    Case("ceph_migrate.respond_gate", {"inquiry_id": "no-such-inquiry", "approved": "maybe"},
         False, "'maybe' is no boolean literal: the cast fails; " + REFUSED),
    # -- workflows (orquesta runner: its only runner parameter is notify)
    Case(MIGRATE, _dry(), True, HARMLESS_DRY),
    Case(MIGRATE, _dry(mode=None), True, "null on an enum that lists null; " + HARMLESS_DRY),
    Case(MIGRATE, _dry(mode="async"), False, "enum violation; " + REFUSED),
    Case(MIGRATE, {"dry_run": True}, False, "required volume_id missing; " + REFUSED),
    Case(MIGRATE, _dry(dry_run="true"), True, "the string 'true' is cast to a boolean; "
         + HARMLESS_DRY),
    Case(MIGRATE, _dry(sync_retries=-1), False, "below minimum 0; " + REFUSED),
    Case(MIGRATE, _dry(sync_retries="3"), True, "numeric string cast to an integer; "
         + HARMLESS_DRY),
    Case(MIGRATE, _dry(timeout=60), False, "the orquesta runner has no timeout parameter: "
         "unknown; " + REFUSED),
    Case(MIGRATE, _dry(notify=["plan"]), True, "notify is the orquesta runner's parameter "
         "(names of tasks); " + HARMLESS_DRY),
    Case(MIGRATE, _dry(notify=["not a task"]), False, "notify items must match ^\\w+$; "
         + REFUSED),
    Case(MIGRATE, _dry(allow_in_use=None, keep_mirroring=None), True, "null for booleans with "
         "defaults; " + HARMLESS_DRY),
    Case("ceph_migrate.migrate_boot_volume", _dry(mode="snapshot"), False, "the boot "
         "procedure has no mode parameter: unknown; " + REFUSED),
    Case("ceph_migrate.rollback", _dry(), True, HARMLESS_DRY + " (plan_rollback only)"),
    Case("ceph_migrate.rollback", _dry(procedure="both"), False, "enum violation; " + REFUSED),
    Case("ceph_migrate.rollback", _dry(dry_run=1), False, "an integer is not a boolean (only "
         "strings are cast); " + REFUSED),
    Case(BATCH, _batch(), True, HARMLESS_DRY),
    Case(BATCH, _batch(volumes=[]), False, "below minItems 1; " + REFUSED),
    Case(BATCH, _batch(volumes=None), False, "null for a required array; " + REFUSED),
    Case(BATCH, _batch(volumes=[1, 2]), False, "array items must be strings; " + REFUSED),
    Case(BATCH, _batch(volumes={"a": NO_VOLUME}), False, "object for an array; " + REFUSED),
    Case(BATCH, _batch(volumes="vol-a"), False, "a string that is neither JSON nor a Python "
         "literal: st2's array cast fails (ValueError); " + REFUSED),
    Case(BATCH, _batch(volumes='["%s"]' % NO_VOLUME), True, "a JSON string is cast to the "
         "array; " + HARMLESS_DRY),
    Case(BATCH, _batch(concurrency=17), False, "above maximum 16; " + REFUSED),
    Case(BATCH, _batch(concurrency=0), False, "below minimum 1; " + REFUSED),
    Case(BATCH, _batch(procedure=None, mode=None, concurrency=None), True, "null for an enum "
         "with a default, an enum with null and an integer with a default; " + HARMLESS_DRY),
    # -- identifiers from chat: every one has a pattern, so an expression never reaches Orquesta
    Case(MIGRATE, _dry(volume_id="<% str(6*7) %>"), False, "an Orquesta expression typed as a "
         "volume id does not match the UUID pattern; " + REFUSED),
    Case(MIGRATE, _dry(volume_id="<% str(ctx()) %>"), False, "the workflow context asked for "
         "through a volume id; " + REFUSED),
    Case(MIGRATE, _dry(volume_id=NO_VOLUME.upper()), False, "volume ids are lower-case "
         "canonical UUIDs (a batch cannot list one volume twice by spelling it twice); "
         + REFUSED),
    Case(MIGRATE, _dry(destination_project="<% ctx(st2) %>"), False, "a project name with "
         "expression delimiters; " + REFUSED),
    Case(BATCH, _batch(volumes=[NO_VOLUME, NO_VOLUME.upper()]), False, "the same volume twice "
         "in two spellings: the upper-case one does not match; " + REFUSED),
    Case(PLAN, {"volume_id": NO_VOLUME, "destination_image": "../x"}, False, "an rbd name with "
         "a path in it; " + REFUSED),
    Case("ceph_migrate.image_info", {"image": NO_IMAGE, "pool": "-rf"}, False, "a pool that "
         "reads as an option; " + REFUSED),
    Case("ceph_migrate.respond_gate", {"inquiry_id": "<% ctx() %>", "approved": True}, False,
         "an inquiry id is an execution id (24 hex digits); " + REFUSED),
    Case("ceph_migrate.create_volume_from_image", {
        "image_id": NO_VOLUME, "destination_project": "tenant", "name": "vol <% ctx() %>",
        "size_gib": 1}, False, "a volume name with expression delimiters; " + REFUSED),
    # -- core actions the workflows call (refused ones only: an accepted core.ask would leave a
    #    pending inquiry behind)
    Case("core.ask", {"ttl": "tomorrow"}, False, "inquirer runner ttl is an integer: the cast "
         "fails; " + REFUSED),
    Case("core.ask", {"users": "alice"}, False, "inquirer runner users is an array: 'alice' is "
         "neither JSON nor a literal; " + REFUSED),
    Case("core.ask", {"route": "x", "approvers": ["alice"]}, False, "unknown parameter for the "
         "inquirer runner; " + REFUSED),
    Case("core.echo", {"message": "hi", "cmd": "id"}, False, "cmd is immutable in core.echo: "
         "'Override of immutable parameter(s)'; " + REFUSED),
    Case("core.noop", {"anything": 1}, True, "core.noop and its runner declare no parameter: "
         "st2's schema is then empty and accepts anything; harmless: does nothing"),
]
