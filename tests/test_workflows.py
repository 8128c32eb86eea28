"""The workflows: inspected by orquesta, wired to real actions, and every branch simulated with
scripted action results through orquesta's own conductor (the real-cluster runs are in the
end-to-end tests)."""
import glob
import os

import pytest

from st2_support import PACK_DIR, load_yaml_strict
from runner.actions import metadata
from runner.local import LocalRunner, python_result

WORKFLOWS = sorted(glob.glob(os.path.join(PACK_DIR, "actions", "workflows", "*.yaml")))
CORE = {"core.ask": {"schema", "route", "users", "roles", "ttl"}, "core.noop": set(),
        "core.echo": {"message"}}


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_inspects_clean_and_calls_real_actions_with_real_parameters(path):
    name = os.path.splitext(os.path.basename(path))[0]
    runner = LocalRunner({})
    assert runner.spec("ceph_migrate." + name).inspect() == {}
    definition = load_yaml_strict(path)            # duplicate task names would be lost
    meta = metadata(name)
    assert meta["runner_type"] == "orquesta"
    assert [i if isinstance(i, str) else list(i)[0] for i in definition["input"]] == \
        list(meta["parameters"]), "workflow input and action parameters differ"
    for task_name, task in definition["tasks"].items():
        ref, given = task["action"], set((task.get("input") or {}))
        if ref in CORE:
            assert given <= CORE[ref], (task_name, given - CORE[ref])
            continue
        params = metadata(ref.split(".", 1)[1])["parameters"] or {}
        assert given <= set(params), (task_name, given - set(params))
        required = {k for k, v in params.items() if v.get("required")}
        assert required <= given, (task_name, required - given)


VOLUME = "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"
IMAGE = "volume-" + VOLUME


def plan_result(mode="snapshot"):
    return {"ok": True, "checks": [], "plan": {"image": IMAGE, "mode": mode}}


class Script:
    """Scripted action results; records every call."""

    def __init__(self, mode="snapshot", **overrides):
        self.calls = []
        self.results = {
            "plan_volume_migration": [(True, plan_result(mode))],
            "gate_approvers": [(True, {"ceph_admin": {"users": ["ceph"], "roles": []},
                                       "tenant_admin": {"users": ["tenant"], "roles": []}})],
            "wait_for_sync": [(True, {"in_sync": True})],
            "copy_replica": [(True, {"changed": True, "seconds": 1.0})],
            "verify_copy": [(True, {"verified": True, "sha256": "ab" * 32})],
            "manage_volume": [(True, {"changed": True, "volume_id": "new-id"})],
        }
        self.results.update(overrides)

    def __call__(self, ref, params):
        if ref == "core.noop":
            return True, {}
        name = ref.split(".", 1)[1]
        self.calls.append((name, params))
        queue = self.results.get(name, [(True, {"changed": True})])
        ok, value = queue.pop(0) if len(queue) > 1 else queue[0]
        return ok, python_result(ok, value)

    def names(self):
        return [name for name, _ in self.calls]


def run(script, answers=None, **inputs):
    answers = dict({"approve_mirroring": True, "approve_cutover": True,
                    "approve_cleanup": True}, **(answers or {}))
    asked = []

    def answer(task, params):
        asked.append((task, params))
        value = answers[task]
        return None if value is None else {"approved": value}

    runner = LocalRunner({}, answer=answer, execute=script, delay_scale=0)
    result = runner.run("ceph_migrate.migrate_volume", volume_id=VOLUME, **inputs)
    return result, asked


HAPPY = ["plan_volume_migration", "gate_approvers", "enable_mirroring", "wait_for_sync",
         "mirror_snapshot", "wait_for_sync", "copy_replica", "verify_copy", "manage_volume",
         "disable_mirroring", "restore_features"]


def test_happy_path_snapshot_mode():
    script = Script()
    result, asked = run(script)
    assert result.status == "succeeded", result.errors
    assert script.names() == HAPPY
    assert [t for t, _ in asked] == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
    assert asked[0][1]["users"] == ["ceph"] and asked[1][1]["users"] == ["tenant"]
    assert asked[1][1]["route"] == "tenant_admin"
    assert result.output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
    assert result.output["volume"] == {"changed": True, "volume_id": "new-id"}
    assert dict(script.calls)["enable_mirroring"] == {"image": IMAGE, "mode": "snapshot"}


def test_journal_mode_has_no_mirror_snapshot():
    script = Script(mode="journal")
    result, _ = run(script, mode="journal")
    assert result.status == "succeeded"
    assert script.names() == [n for n in HAPPY if n != "mirror_snapshot"]
    assert dict(script.calls)["plan_volume_migration"]["mode"] == "journal"


def test_dry_run_only_plans():
    script = Script()
    result, asked = run(script, dry_run=True)
    assert result.status == "succeeded" and script.names() == ["plan_volume_migration"]
    assert asked == [] and result.output["outcome"] == "dry run, nothing was changed"
    assert result.output["plan"]["plan"]["image"] == IMAGE


def test_failed_preflight_changes_nothing():
    script = Script(plan_volume_migration=[(False, {"ok": False, "checks": [
        {"check": "volume type is not encrypted", "ok": False, "detail": "encrypted"}]})])
    result, asked = run(script)
    assert result.status == "failed" and script.names() == ["plan_volume_migration"]
    assert result.output["outcome"] == "preflight failed, nothing was changed"
    assert result.output["plan"]["checks"][0]["detail"] == "encrypted" and asked == []


@pytest.mark.parametrize("gate,answer,last,words", [
    ("approve_mirroring", False, "gate_approvers", "rejected by the Ceph admin"),
    ("approve_mirroring", None, "gate_approvers", "no answer from the Ceph admin"),
    ("approve_cutover", False, "wait_for_sync", "rejected by the tenant admin"),
    ("approve_cutover", None, "wait_for_sync", "no answer from the tenant admin"),
])
def test_rejected_or_unanswered_gates_stop_cleanly(gate, answer, last, words):
    script = Script()
    result, _ = run(script, answers={gate: answer})
    assert result.status == "failed"
    assert script.names()[-1] == last
    assert words in result.output["outcome"]


@pytest.mark.parametrize("answer,keep,words", [
    (False, False, "cleanup declined"), (None, False, "no answer at the cleanup gate"),
    (True, True, "cleanup declined")])
def test_cleanup_gate_keeps_mirroring_unless_approved(answer, keep, words):
    script = Script()
    result, _ = run(script, answers={"approve_cleanup": answer}, keep_mirroring=keep)
    assert result.status == "succeeded"
    assert script.names()[-1] == "manage_volume"
    assert words in result.output["outcome"]


def test_bounded_waits_are_retried_then_succeed():
    timed_out = (False, {"in_sync": False, "timed_out": True, "percent": 40.0})
    script = Script(wait_for_sync=[timed_out, timed_out, (True, {"in_sync": True})])
    result, _ = run(script, sync_retries=3)
    assert result.status == "succeeded"
    assert script.names().count("wait_for_sync") == 4     # 3 for the first wait, 1 final


def test_retries_exhausted():
    timed_out = (False, {"in_sync": False, "timed_out": True})
    script = Script(wait_for_sync=[timed_out])
    result, _ = run(script, sync_retries=2)
    assert result.status == "failed"
    assert script.names().count("wait_for_sync") == 3
    assert "failed at wait_for_sync" in result.output["outcome"]
    assert "copy_replica" not in script.names()


def test_a_non_timeout_failure_of_a_wait_is_not_retried():
    script = Script(wait_for_sync=[(False, {"error": "rbd-mirror error", "error_type": "X"})])
    result, _ = run(script, sync_retries=5)
    assert result.status == "failed" and script.names().count("wait_for_sync") == 1


@pytest.mark.parametrize("step,task", [
    ("gate_approvers", "approvers"), ("enable_mirroring", "enable_mirroring"),
    ("mirror_snapshot", "final_snapshot"), ("copy_replica", "copy_replica"),
    ("verify_copy", "verify_copy"), ("manage_volume", "manage_volume"),
    ("disable_mirroring", "disable_mirroring"), ("restore_features", "restore_features")])
def test_a_failed_step_stops_the_workflow_there(step, task):
    script = Script(**{step: [(False, {"error": "%s broke" % step, "error_type": "X"})]})
    result, _ = run(script)
    assert result.status == "failed"
    assert script.names()[-1] == step
    assert "failed at %s" % task in result.output["outcome"]
    assert "%s broke" % step in result.output["outcome"]
    if step in ("disable_mirroring", "restore_features"):
        assert result.output["outcome"].startswith("migrated and verified")
