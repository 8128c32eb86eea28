"""The local runner refuses exactly the calls StackStorm 3.9 refuses when an execution is
requested, and fails a workflow task the way st2's workflow engine does (no cluster needed).

The verdicts come from tests/param_cases.py, the table a real-StackStorm test replays."""
import copy
import os
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from param_cases import CASES, NO_VOLUME, Case
from runner.actions import (RUNNER_PARAMETERS, ParameterError, action_metadata, check_call,
                            merged_schema, metadata, parameters)
from runner.local import LocalRunner, load_definition, python_result
from runner.st2_schema import NONE_MAGIC_VALUE, cast_like_st2

WORKFLOW_CASES = [c for c in CASES if c.ref.startswith("ceph_migrate.")
                  and metadata(c.ref.split(".", 1)[1])["runner_type"] == "orquesta"]


def _id(case: Case) -> str:
    return "%s-%s-%s" % (case.ref, "ok" if case.accepted else "refused", case.params)


def test_the_table_is_broad():
    assert len(CASES) >= 30
    assert {c.accepted for c in CASES} == {True, False}
    assert {c.ref for c in CASES} >= {"ceph_migrate.plan_volume_migration",
                                      "ceph_migrate.migrate_volume", "ceph_migrate.migrate_batch",
                                      "core.ask"}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_parameters_give_the_st2_verdict(case: Case):
    meta = action_metadata(case.ref)
    if case.accepted:
        values = check_call(meta, copy.deepcopy(case.params)).action
        runner = RUNNER_PARAMETERS[meta["runner_type"]]
        assert set(values) == set(meta.get("parameters") or {}) - set(runner)
        return
    with pytest.raises(ParameterError) as refused:
        check_call(meta, copy.deepcopy(case.params))
    assert str(refused.value).startswith(case.ref + ": parameter ")
    assert isinstance(refused.value, ValueError)      # what the st2 API answers with 400


class Calls:
    """A stand-in for every python action: records the call and fails it (nothing exists)."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, Dict[str, Any]]] = []

    def __call__(self, ref: str, params: Dict[str, Any]) -> Tuple[bool, Any]:
        self.calls.append((ref, params))
        return False, python_result(False, {"error": "no such volume", "error_type": "X"})


@pytest.mark.parametrize("case", WORKFLOW_CASES, ids=_id)
def test_local_runner_starts_a_workflow_only_when_st2_would(case: Case):
    calls = Calls()
    runner = LocalRunner({}, execute=calls, answer=lambda task, params: None, delay_scale=0)
    if not case.accepted:
        with pytest.raises(ValueError, match="^%s: parameter " % case.ref):
            runner.run(case.ref, **copy.deepcopy(case.params))
        assert calls.calls == []
        return
    result = runner.run(case.ref, **copy.deepcopy(case.params))
    assert result.status == "failed"           # the (dry-run) plan of a missing volume fails
    assert calls.calls and all("plan" in ref or "describe" in ref for ref, _ in calls.calls)


# -------------------------------------------------------------------- what run() receives
def test_run_gets_every_declared_parameter_cast_and_defaulted_without_runner_ones():
    meta = metadata("plan_volume_migration")
    values = parameters(meta, {"volume_id": NO_VOLUME, "allow_in_use": "false", "timeout": "9"})
    assert values == {"volume_id": NO_VOLUME, "mode": None, "destination_image": None,
                      "destination_project": None, "allow_in_use": False, "method": None,
                      "placement": None}
    call = check_call(meta, {"volume_id": NO_VOLUME, "timeout": "9"})
    assert call.live == {"volume_id": NO_VOLUME, "timeout": 9}
    assert call.runner == {"debug": False, "content_version": None, "env": None, "timeout": 9,
                           "log_level": "DEBUG"}


def test_an_action_default_for_a_runner_parameter_wins():
    timeout = merged_schema(metadata("copy_replica"))["timeout"]
    assert (timeout["type"], timeout["default"]) == ("integer", 7500)
    assert check_call(metadata("copy_replica"), {"image": "x"}).runner["timeout"] == 7500


def test_null_on_an_enum_without_null_is_refused_with_st2s_message():
    """The bug StackStorm found: a workflow passed mode=null to an enum without null."""
    meta = metadata("plan_volume_migration")
    meta["parameters"]["mode"]["enum"] = ["snapshot", "journal"]
    with pytest.raises(ParameterError) as refused:
        parameters(meta, {"volume_id": NO_VOLUME, "mode": None})
    assert str(refused.value) == ("ceph_migrate.plan_volume_migration: parameter mode: "
                                  "None is not one of ['snapshot', 'journal']")
    assert (refused.value.kind, refused.value.parameter) == ("ValidationError", "mode")


def test_cast_failures_and_immutables_are_refused_like_st2():
    with pytest.raises(ParameterError) as refused:
        parameters(metadata("wait_for_sync"), {"image": "x", "timeout_seconds": "one"})
    assert refused.value.kind == "ValueError" and refused.value.parameter == "timeout_seconds"
    with pytest.raises(ParameterError, match=r"Override of immutable parameter\(s\) \['cmd'\]"):
        check_call(action_metadata("core.echo"), {"message": "hi", "cmd": "id"})
    meta = {"name": "x", "runner_type": "python-script",
            "parameters": {"fixed": {"type": "string", "default": "a", "immutable": True}}}
    assert parameters(meta, {}) == {"fixed": "a"}
    with pytest.raises(ParameterError, match="immutable"):
        parameters(meta, {"fixed": "a"})          # even the same value: st2 refuses the key


@pytest.mark.parametrize("value,kind,expected", [
    ("true", "boolean", True), ("FALSE", "boolean", False), ("5", "integer", 5),
    (2.7, "integer", 2), ('["a"]', "array", ["a"]), ("{'a': 1}", "object", {"a": 1}),
    (NONE_MAGIC_VALUE, "string", None), ("x", None, "x"), (5, None, 5)])
def test_st2_casts_before_validating(value: Any, kind: Any, expected: Any):
    assert cast_like_st2(value, {"type": kind} if kind else {}) == expected


@pytest.mark.parametrize("value,kind,error", [
    ("yes", "boolean", ValueError), (5, "string", ValueError), ("a b", "array", SyntaxError),
    (NONE_MAGIC_VALUE, "integer", TypeError), ({}, "integer", TypeError)])
def test_st2_cast_failures(value: Any, kind: str, error: type):
    with pytest.raises(error):
        cast_like_st2(value, {"type": kind})


def test_an_action_may_override_only_some_attributes_of_a_runner_parameter():
    meta = {"name": "x", "runner_type": "python-script",
            "parameters": {"timeout": {"type": "string"}}}
    with pytest.raises(ParameterError, match='attribute "type" .* cannot be overridden'):
        parameters(meta, {})


def test_core_ask_gets_the_inquirer_runner_defaults():
    call = check_call(action_metadata("core.ask"), {"route": "ceph_admin", "users": ["ceph"]})
    assert call.action == {}
    assert call.runner["ttl"] == 1440 and call.runner["roles"] == []
    assert call.runner["schema"]["properties"]["continue"]["required"] is True


# -------------------------------------------------------------------- workflow simulations
VOLUME = "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"


def test_a_refused_task_fails_the_workflow_without_running_the_action():
    """migrate_volume whose plan hands enable_mirroring a mode outside its enum: st2 fails the
    task with the validation error and the workflow at once; nothing after it runs."""
    calls: List[str] = []

    def execute(ref: str, params: Dict[str, Any]) -> Tuple[bool, Any]:
        calls.append(ref.split(".", 1)[1])
        value = {"changed": True}
        if ref.endswith("plan_volume_migration"):
            bogus = {"image": "volume-x", "mode": "bogus", "mirrored_pool": "oscinder",
                     "destination_pool": "cinder-ct1", "method": "mirror"}
            value = {"ok": True, "checks": [], "plan": bogus, "migration": bogus}
        elif ref.endswith("gate_approvers"):
            value = {"ceph_admin": {"users": [], "roles": []},
                     "tenant_admin": {"users": [], "roles": []}}
        return True, python_result(True, value)

    runner = LocalRunner({}, execute=execute, answer=lambda task, params: {"approved": True},
                         delay_scale=0)
    result = runner.run("ceph_migrate.migrate_volume", volume_id=VOLUME)
    assert result.status == "failed"
    assert calls == ["plan_volume_migration", "gate_approvers"]
    task = result.task("enable_mirroring")
    message = "ValidationError: 'bogus' is not one of ['snapshot', 'journal', None]"
    assert task.status == "failed"
    [error] = task.result["errors"]
    assert (error["type"], error["message"], error["task_id"]) == ("error", message,
                                                                   "enable_mirroring")
    assert result.errors[0] == task.result["errors"][0]
    assert result.names()[-1] == "enable_mirroring"


def _pack(tmp_path, actions: Dict[str, Dict[str, Any]], workflows: Dict[str, str]) -> str:
    os.makedirs(tmp_path / "actions" / "workflows")
    for name, meta in actions.items():
        (tmp_path / "actions" / ("%s.yaml" % name)).write_text(
            yaml.safe_dump(dict(meta, name=name)))
    for name, text in workflows.items():
        (tmp_path / "actions" / "workflows" / ("%s.yaml" % name)).write_text(text)
    return str(tmp_path)


ENABLE = {"runner_type": "python-script", "entry_point": "enable.py", "parameters": {
    "image": {"type": "string", "required": True},
    "mode": {"type": "string", "enum": ["snapshot", "journal"]}}}      # no null: the old bug
WORKFLOW = {"runner_type": "orquesta", "entry_point": "workflows/wf.yaml", "parameters": {
    "mode": {"type": "string"}, "ttl": {"default": 5}}}
WF = """version: 1.0
input:
  - mode
  - ttl
tasks:
  enable:
    action: ceph_migrate.enable
    input:
      image: img
      mode: <% ctx(mode) %>
    next:
      - when: <% failed() %>
        do: cleanup
      - when: <% succeeded() %>
        do: ask
  ask:
    action: core.ask
    input:
      route: ops
      ttl: <% ctx(ttl) %>
  cleanup:
    action: core.noop
"""


def _throwaway(tmp_path) -> Tuple[LocalRunner, List[str], List[str]]:
    pack = _pack(tmp_path, {"enable": ENABLE, "wf": WORKFLOW,
                            "parent": {"runner_type": "orquesta",
                                       "entry_point": "workflows/parent.yaml",
                                       "parameters": {"mode": {"type": "string"}}}},
                 {"wf": WF, "parent": "version: 1.0\ninput:\n  - mode\ntasks:\n  child:\n"
                                      "    action: ceph_migrate.wf\n    input:\n"
                                      "      mode: <% ctx(mode) %>\n    next:\n"
                                      "      - when: <% failed() %>\n        do: handled\n"
                                      "  handled:\n    action: core.noop\n"})
    executed: List[str] = []
    asked: List[str] = []

    def answer(task: str, params: Dict[str, Any]) -> Dict[str, Any]:
        asked.append(task)
        return {"approved": True}

    runner = LocalRunner({}, execute=lambda ref, params: (executed.append(ref) or
                                                          (True, python_result(True, {}))),
                         answer=answer, delay_scale=0, pack_dir=pack)
    return runner, executed, asked


def test_a_workflow_passing_null_to_an_enum_without_null_fails_like_st2(tmp_path):
    runner, executed, _ = _throwaway(tmp_path)
    result = runner.run("ceph_migrate.wf")                    # mode absent: the task gets null
    assert result.status == "failed" and executed == []
    assert result.names() == ["enable"]                       # the failed() branch is not taken
    assert result.task("enable").result["errors"][0]["message"] == \
        "ValidationError: None is not one of ['snapshot', 'journal']"
    assert runner.run("ceph_migrate.wf", mode="journal").status == "succeeded"


def test_a_refused_core_ask_is_never_asked(tmp_path):
    runner, executed, asked = _throwaway(tmp_path)
    result = runner.run("ceph_migrate.wf", mode="journal", ttl="soon")    # any type: accepted
    assert executed == ["ceph_migrate.enable"] and asked == []
    assert result.status == "failed"
    assert result.task("ask").result["errors"][0]["message"].startswith(
        "ValueError: invalid literal for int()")


def test_a_subworkflow_is_checked_and_its_failure_is_an_ordinary_task_failure(tmp_path):
    runner, executed, _ = _throwaway(tmp_path)
    result = runner.run("ceph_migrate.parent")    # the child's task is refused: child fails
    assert result.status == "succeeded" and result.names() == ["child", "handled"]
    assert result.task("child").result["errors"][0]["message"].startswith("ValidationError")
    with pytest.raises(ValueError, match="ceph_migrate.wf: parameter mode: "):
        runner.run("ceph_migrate.wf", mode=3)


@pytest.mark.parametrize("text,words", [
    ("a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n", "could not determine a constructor for the tag "
                                             "'tag:yaml.org,2002:merge'"),
    ("a: 1\na: 2\n", 'found duplicate key "a"'),
])
def test_a_definition_stackstorm_cannot_read_is_refused_with_its_words(text, words):
    """StackStorm 3.9's orquesta reads workflows with its own loader: no YAML merge keys (a
    workflow using one failed in the real StackStorm, where plain safe_load had taken it), no
    duplicate keys."""
    with pytest.raises(ValueError, match="^Failed to load workflow definition because "):
        load_definition(text)
    with pytest.raises(ValueError) as refused:
        load_definition(text)
    assert words in str(refused.value)
    assert load_definition("a: &x {b: 1}\nc: *x\n") == {"a": {"b": 1}, "c": {"b": 1}}
