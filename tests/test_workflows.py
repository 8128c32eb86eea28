"""The workflows: inspected by orquesta, wired to real actions, and every branch simulated with
scripted action results through orquesta's own conductor (the real-cluster runs are in the
end-to-end tests)."""
import glob
import os

import pytest

from st2_support import PACK_DIR, load_yaml_strict
from runner.actions import metadata
from runner.local import LocalRunner, python_result
from lib.migration import Migration

WORKFLOWS = sorted(glob.glob(os.path.join(PACK_DIR, "actions", "workflows", "*.yaml")))
CORE = {"core.ask": {"schema", "route", "users", "roles", "ttl"}, "core.noop": set(),
        "core.echo": {"message"}}


def actions_running(path):
    """The pack's orquesta actions whose entry point is the workflow at ``path`` (one workflow
    may serve several actions, each fixing its own immutable inputs)."""
    entry = "workflows/" + os.path.basename(path)
    metas = [metadata(os.path.splitext(os.path.basename(p))[0])
             for p in glob.glob(os.path.join(PACK_DIR, "actions", "*.yaml"))]
    return [m for m in metas if m.get("runner_type") == "orquesta"
            and m.get("entry_point", "").split("#")[0].strip() == entry]


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_inspects_clean_and_calls_real_actions_with_real_parameters(path):
    definition = load_yaml_strict(path)            # duplicate task names would be lost
    inputs = [i if isinstance(i, str) else list(i)[0] for i in definition["input"]]
    metas = actions_running(path)
    assert metas, "no action runs %s" % path
    for meta in metas:
        runner = LocalRunner({})
        assert runner.spec("ceph_migrate." + meta["name"]).inspect(app_ctx={"st2": {}}) == {}
        assert [i for i in inputs if i in meta["parameters"]] == list(meta["parameters"]), \
            "%s: its parameters are not workflow inputs in the same order" % meta["name"]
    assert set(inputs) == set().union(*(m["parameters"] for m in metas)), \
        "a workflow input no action passes"
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
DEST_IMAGE = "5d1c2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"     # the image registered at the destination


def migration_value(procedure="data", mode="snapshot", volume=None, project=None):
    """The value a plan returns under ``migration`` (lib.migration, as the real plans build it)."""
    data = procedure == "data"
    return Migration(procedure=procedure, volume_id=VOLUME, volume=volume,
                     destination_project=project, mode=mode,
                     mirrored_pool="oscinder" if data else "osglance",
                     destination_pool="cinder-ct1" if data else "glance-ct1",
                     image=IMAGE if data else None,
                     destination_image=IMAGE if data else None).as_dict()


def plan_result(mode="snapshot"):
    return {"ok": True, "checks": [], "plan": {"image": IMAGE, "mode": mode},
            "migration": migration_value(mode=mode)}


class Script:
    """Scripted action results; records every call."""

    def __init__(self, mode="snapshot", **overrides):
        self.calls = []
        self.results = {
            "plan_volume_migration": [(True, plan_result(mode))],
            "gate_approvers": [(True, {"ceph_admin": {"users": ["ceph"], "roles": []},
                                       "tenant_admin": {"users": ["tenant"], "roles": []}})],
            "wait_for_sync": [(True, {"in_sync": True})],
            "copy_replica": [(True, {"changed": True, "seconds": 1.0,
                                     "target": {"image": IMAGE}})],
            "verify_copy": [(True, {"verified": True, "sha256": "ab" * 32})],
            "manage_volume": [(True, {"changed": True, "volume_id": "new-id"})],
        }
        self.results.update(overrides)

    def __call__(self, ref, params):
        name = ref.split(".", 1)[1]
        self.calls.append((name, params))
        queue = self.results.get(name, [(True, {"changed": True})])
        if callable(queue):                       # results that depend on the parameters
            ok, value = queue(params)
        else:
            ok, value = queue.pop(0) if len(queue) > 1 else queue[0]
        return ok, python_result(ok, value)

    def names(self):
        return [name for name, _ in self.calls]


def run(script, answers=None, workflow="migrate_volume", **inputs):
    answers = dict({"approve_mirroring": True, "approve_cutover": True,
                    "approve_cleanup": True, "approve_rollback": True}, **(answers or {}))
    asked = []

    def answer(task, params):
        asked.append((task, params))
        value = answers[task]
        return None if value is None else {"approved": value}

    runner = LocalRunner({}, answer=answer, execute=script, delay_scale=0)
    if workflow != "migrate_batch":
        inputs.setdefault("volume_id", VOLUME)
    result = runner.run("ceph_migrate." + workflow, **inputs)
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
    assert dict(script.calls)["enable_mirroring"] == {"image": IMAGE, "pool": "oscinder",
                                                      "mode": "snapshot"}
    assert dict(script.calls)["manage_volume"] == {"volume_id": VOLUME, "destination_project": None,
                                                   "migration": plan_result()["migration"]}


def test_journal_mode_has_no_mirror_snapshot():
    script = Script(mode="journal")
    result, _ = run(script, mode="journal")
    assert result.status == "succeeded"
    assert script.names() == [n for n in HAPPY if n != "mirror_snapshot"]
    assert dict(script.calls)["plan_volume_migration"]["mode"] == "journal"


EXPORT_DIFF = ["plan_volume_migration", "gate_approvers", "sync_image", "verify_sync",
               "sync_image", "verify_sync", "drop_sync_snapshots", "manage_volume",
               "drop_sync_snapshots"]


def export_diff_migration():
    return dict(migration_value(), method="export_diff")


def export_diff_script(**overrides):
    plan = dict(plan_result(), migration=export_diff_migration())
    return Script(**dict({
        "plan_volume_migration": [(True, plan)],
        "sync_image": [(True, {"changed": True, "snapshot": "ceph_migrate-sync-1",
                               "target": {"image": IMAGE}, "bytes": 5})],
        "verify_sync": [(True, {"verified": True, "digest": "ab" * 32})]}, **overrides))


def test_export_diff_copies_before_the_cutover_and_only_the_delta_inside_it():
    script = export_diff_script()
    result, asked = run(script, method="export_diff")
    assert result.status == "succeeded", result.errors
    assert script.names() == EXPORT_DIFF
    assert [t for t, _ in asked] == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
    assert "while it is in use" in asked[0][1]["schema"]["properties"]["approved"]["description"]
    pair = {"migration": export_diff_migration()}     # the images and pools come from it
    calls = script.calls
    assert dict(calls)["plan_volume_migration"]["method"] == "export_diff"
    # pre-copy and its full check before the tenant admin's gate, the delta after it
    assert calls[2:6] == [("sync_image", pair), ("verify_sync", dict(pair, full=True)),
                          ("sync_image", dict(pair, final=True)),
                          ("verify_sync", dict(pair, full=False))]
    assert calls[6] == ("drop_sync_snapshots", dict(pair, side="destination"))
    assert calls[8] == ("drop_sync_snapshots", dict(pair, side="source"))
    assert result.output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
    assert result.output["left_changed"] == [] and result.output["undo"] is None


def test_export_diff_failing_its_delta_check_stops_before_the_manage_and_says_what_is_left():
    script = export_diff_script(verify_sync=[
        (True, {"verified": True}),
        (False, {"error": "the changes since ceph_migrate-sync-1 ... differ", "error_type":
                 "VerificationFailed"})])
    result, _ = run(script, method="export_diff")
    assert result.status == "failed"
    assert "manage_volume" not in script.names() and script.names()[-1] == "verify_sync"
    assert result.output["failed_at"] == "verify_delta"
    assert result.output["outcome"] == ("failed at verify_delta: the changes since "
                                        "ceph_migrate-sync-1 ... differ")
    assert result.output["left_changed"] == [
        "sync snapshots (ceph_migrate-sync-N) of %s are at the source" % IMAGE,
        "the copy %s is in the destination Cinder pool, not yet a volume" % IMAGE]
    assert result.output["resume"].endswith(" method=export_diff")
    assert result.output["undo"].startswith("st2 run ceph_migrate.rollback volume_id=")


def test_export_diff_rejected_at_the_cutover_says_the_pre_copy_is_left():
    script = export_diff_script()
    result, _ = run(script, answers={"approve_cutover": False}, method="export_diff")
    assert result.status == "failed"
    assert script.names() == EXPORT_DIFF[:4]
    assert result.output["outcome"] == ("rejected by the tenant admin at the cutover; the "
                                        "pre-copy and its sync snapshots are left (rollback "
                                        "removes them)")


def test_export_diff_cleanup_declined_leaves_the_snapshots_and_says_so():
    script = export_diff_script()
    result, _ = run(script, answers={"approve_cleanup": False}, method="export_diff")
    assert result.status == "succeeded"
    assert script.names() == EXPORT_DIFF[:-1]
    assert result.output["outcome"] == ("migrated and verified; cleanup declined, the sync "
                                        "snapshots are left at the source")


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
    # what it left changed and the exact commands that finish or undo it
    assert result.output["resume"] == "st2 run ceph_migrate.migrate_volume volume_id=" + VOLUME
    assert result.output["undo"] == ("st2 run ceph_migrate.rollback volume_id=%s procedure=data"
                                     % VOLUME if step != "gate_approvers" else None)
    left = {"gate_approvers": [], "enable_mirroring": [], "mirror_snapshot": [MIRRORING],
            "copy_replica": [MIRRORING], "verify_copy": [MIRRORING, COPY],
            "manage_volume": [MIRRORING, COPY], "disable_mirroring": [MIRRORING, NEW_VOLUME],
            "restore_features": [NEW_VOLUME]}[step]
    assert result.output["left_changed"] == left


MIRRORING = "mirroring of %s is on (its replica is at the destination)" % IMAGE
COPY = "the copy %s is in the destination Cinder pool, not yet a volume" % IMAGE
NEW_VOLUME = "volume new-id is at the destination"


def test_a_finished_or_dry_run_leaves_nothing_to_resume_or_undo():
    result, _ = run(Script())
    assert result.status == "succeeded"
    assert (result.output["left_changed"], result.output["resume"], result.output["undo"]) == \
        ([], None, None)
    result, _ = run(Script(), dry_run=True)
    assert (result.output["left_changed"], result.output["resume"], result.output["undo"]) == \
        ([], None, None)
    failed, _ = run(Script(manage_volume=[(False, {"error": "no", "error_type": "X"})]),
                    mode="journal", destination_project="tenant-b")
    assert failed.output["resume"] == ("st2 run ceph_migrate.migrate_volume volume_id=%s "
                                       "mode=journal destination_project=tenant-b" % VOLUME)
    assert failed.output["undo"] == ("st2 run ceph_migrate.rollback volume_id=%s procedure=data "
                                     "destination_project=tenant-b" % VOLUME)


# -- a re-run of a migration that got far ---------------------------------------------------
PROMOTE = ["plan_volume_migration", "gate_approvers", "enable_mirroring", "wait_for_sync",
           "mirror_snapshot", "wait_for_sync", "promote_in_place", "manage_volume",
           "verify_in_place", "release_in_place", "restore_features"]


def promote_script(demoted=False, **overrides):
    migration = dict(migration_value(), placement="promote", destination_pool="oscinder")
    plan = dict(plan_result(), migration=migration, in_place={"source_demoted": demoted})
    return Script(**dict({
        "plan_volume_migration": [(True, plan)],
        "manage_volume": [(True, {"changed": True, "volume_id": "new-id",
                                  "rbd_image": "oscinder/volume-new-id"})],
        "verify_in_place": [(True, {"verified": True, "sha256": "ab" * 32})]}, **overrides))


def test_promote_places_the_replica_instead_of_copying_it_and_checks_it_after_the_window():
    script = promote_script()
    result, asked = run(script, placement="promote")
    assert result.status == "succeeded", result.errors
    assert script.names() == PROMOTE
    assert [t for t, _ in asked] == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
    assert "demoted (read-only)" in asked[1][1]["schema"]["properties"]["approved"]["description"]
    calls = dict(script.calls)
    assert calls["plan_volume_migration"]["placement"] == "promote"
    migration = calls["promote_in_place"]["migration"]
    assert migration["placement"] == "promote"
    # the check and the release address the image under the name cinder manage gave it
    assert calls["verify_in_place"] == {"migration": migration,
                                        "destination_image": "volume-new-id"}
    assert calls["release_in_place"] == calls["verify_in_place"]
    assert result.output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
    assert result.output["left_changed"] == [] and result.output["undo"] is None


def test_promote_failing_its_check_releases_nothing_and_says_the_source_is_demoted():
    script = promote_script(verify_in_place=[(False, {
        "error": "content differs: ...; the source stays demoted and read-only",
        "error_type": "VerificationFailed"})])
    result, asked = run(script, placement="promote")
    assert result.status == "failed"
    assert script.names()[-1] == "verify_in_place" and "release_in_place" not in script.names()
    assert [t for t, _ in asked] == ["approve_mirroring", "approve_cutover"]
    assert result.output["failed_at"] == "verify_in_place"
    assert result.output["outcome"].startswith(
        "managed in place at the destination, not verified yet; failed at verify_in_place: "
        "content differs")
    assert ("the source image %s is demoted (read-only) and its replica promoted at the "
            "destination" % IMAGE) in result.output["left_changed"]
    assert result.output["resume"].endswith(" placement=promote")
    assert result.output["undo"].startswith("st2 run ceph_migrate.rollback")


def test_promote_rerun_after_the_demotion_finishes_without_asking_the_passed_gates_again():
    script = promote_script(demoted=True)
    result, asked = run(script, placement="promote")
    assert result.status == "succeeded", result.errors
    assert script.names() == ["plan_volume_migration", "gate_approvers"] + PROMOTE[6:]
    assert [t for t, _ in asked] == ["approve_cleanup"]


def test_promote_rerun_after_the_manage_checks_before_the_cleanup_gate():
    script = promote_script()
    plan = script.results["plan_volume_migration"][0][1]
    plan["already_migrated"] = dict(earlier(), volume={
        "volume_id": "new-id", "status": "available", "rbd_image": "oscinder/volume-new-id"})
    result, asked = run(script, placement="promote")
    assert result.status == "succeeded", result.errors
    assert script.names() == ["plan_volume_migration", "gate_approvers", "verify_in_place",
                              "release_in_place", "restore_features"]
    assert [t for t, _ in asked] == ["approve_cleanup"]


def test_promote_cleanup_declined_leaves_the_source_demoted_and_says_so():
    script = promote_script()
    result, _ = run(script, answers={"approve_cleanup": False}, placement="promote")
    assert result.status == "succeeded", result.errors
    assert "release_in_place" not in script.names()
    assert result.output["outcome"] == ("migrated and verified; cleanup declined, mirroring "
                                        "left on, the source demoted (read-only)")


def earlier(usable=True, cleanup_pending=True, image_id=None):
    return {"volume": {"volume_id": "new-id", "status": "available" if usable else "error"},
            "usable": usable, "cleanup_pending": cleanup_pending, "image_id": image_id}


def test_a_rerun_after_the_manage_goes_straight_to_the_cleanup_gate():
    plan = dict(plan_result(), already_migrated=earlier())
    script = Script(plan_volume_migration=[(True, plan)])
    result, asked = run(script)
    assert result.status == "succeeded", result.errors
    assert script.names() == ["plan_volume_migration", "gate_approvers", "disable_mirroring",
                              "restore_features"]
    assert [t for t, _ in asked] == ["approve_cleanup"]
    assert result.output["volume"]["volume_id"] == "new-id"


def test_a_rerun_of_a_finished_migration_changes_nothing():
    plan = dict(plan_result(), already_migrated=earlier(cleanup_pending=False))
    script = Script(plan_volume_migration=[(True, plan)])
    result, asked = run(script)
    assert result.status == "succeeded" and asked == []
    assert script.names() == ["plan_volume_migration", "gate_approvers"]
    assert result.output["outcome"] == "already migrated as new-id; nothing left to do"


def test_a_rerun_over_a_failed_destination_volume_asks_for_a_rollback():
    plan = dict(plan_result(), already_migrated=earlier(usable=False))
    script = Script(plan_volume_migration=[(True, plan)])
    result, asked = run(script)
    assert result.status == "failed" and asked == []
    assert script.names() == ["plan_volume_migration"]
    assert "left volume new-id error" in result.output["outcome"]
    assert "rollback" in result.output["outcome"]


def test_a_dry_run_says_it_was_already_migrated():
    plan = dict(plan_result(), already_migrated=earlier())
    result, _ = run(Script(plan_volume_migration=[(True, plan)]), dry_run=True)
    assert result.output["outcome"] == "dry run, nothing was changed; already migrated as new-id"


# -- migrate_boot_volume --------------------------------------------------------------------
SOURCE = {"id": VOLUME, "name": "boot-1", "size_gib": 3, "volume_type": "ceph",
          "bootable": True}
GLANCE_IMAGE = "5d3c7d0e-1f41-4c4e-9d8e-2b7f0a1c9e01"


def boot_plan(**extra):
    project = {"id": "proj-1", "name": "tenant", "domain": "Default"}
    return dict({"ok": True, "checks": [], "volume": SOURCE, "destination_project": project,
                 "migration": migration_value("boot", "journal", SOURCE, project),
                 "plan": {"mirrored_pool": "osglance", "destination_pool": "glance-ct1"}},
                **extra)


def boot_script(**overrides):
    results = {"plan_boot_volume_migration": [(True, boot_plan())],
               "copy_replica": [(True, {"changed": True, "target": {"image": GLANCE_IMAGE}})],
               "upload_volume_to_image": [(True, {"changed": True, "image_id": GLANCE_IMAGE})],
               "register_image": [(True, {"changed": True, "image_id": DEST_IMAGE})],
               "create_volume_from_image": [(True, {"changed": True, "volume_id": "new-id"})]}
    results.update(overrides)
    return Script(**results)


BOOT_HAPPY = ["plan_boot_volume_migration", "gate_approvers", "upload_volume_to_image",
              "enable_mirroring", "wait_for_sync", "copy_replica", "create_snapshot",
              "verify_copy", "register_image", "create_volume_from_image", "disable_mirroring",
              "restore_features"]


def test_boot_volume_happy_path():
    script = boot_script()
    result, asked = run(script, workflow="migrate_boot_volume")
    assert result.status == "succeeded", result.errors
    assert script.names() == BOOT_HAPPY
    assert [t for t, _ in asked] == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
    assert asked[1][1]["route"] == "tenant_admin"
    calls = dict(script.calls)
    glance = {"image": GLANCE_IMAGE, "pool": "osglance"}
    assert calls["enable_mirroring"] == dict(glance, mode="journal")
    assert calls["copy_replica"] == dict(glance, destination_pool="glance-ct1")
    assert calls["create_snapshot"] == {"image": GLANCE_IMAGE, "pool": "glance-ct1"}
    migration = boot_plan()["migration"]        # the plan's value, carried to the steps
    assert calls["upload_volume_to_image"] == {"volume_id": VOLUME, "allow_in_use": False,
                                               "migration": migration}
    assert calls["register_image"] == {"image_id": GLANCE_IMAGE, "destination_project": "proj-1",
                                       "migration": migration}
    assert calls["create_volume_from_image"] == {
        "image_id": DEST_IMAGE, "destination_project": "proj-1", "name": "boot-1",
        "size_gib": 3, "volume_type": "ceph", "source_volume_id": VOLUME,
        "migration": migration}
    assert calls["disable_mirroring"] == glance and calls["restore_features"] == glance
    assert result.output["outcome"].startswith("migrated, verified and cleaned up")
    assert result.output["volume"]["volume_id"] == "new-id"


def test_boot_volume_dry_run_only_plans():
    script = boot_script()
    result, asked = run(script, workflow="migrate_boot_volume", dry_run=True)
    assert result.status == "succeeded" and asked == []
    assert script.names() == ["plan_boot_volume_migration"]


@pytest.mark.parametrize("gate,answer,words", [
    ("approve_mirroring", False, "rejected by the Ceph admin"),
    ("approve_mirroring", None, "no answer from the Ceph admin"),
    ("approve_cutover", False, "rejected by the tenant admin"),
    ("approve_cutover", None, "no answer from the tenant admin")])
def test_boot_volume_gates_stop_before_anything_is_uploaded(gate, answer, words):
    script = boot_script()
    result, _ = run(script, workflow="migrate_boot_volume", answers={gate: answer})
    assert result.status == "failed" and words in result.output["outcome"]
    assert script.names() == ["plan_boot_volume_migration", "gate_approvers"]
    assert "nothing was changed" in result.output["outcome"]


@pytest.mark.parametrize("step,task", [
    ("upload_volume_to_image", "upload"), ("enable_mirroring", "enable_mirroring"),
    ("copy_replica", "copy_replica"), ("create_snapshot", "snapshot"),
    ("verify_copy", "verify_copy"), ("register_image", "register_image"),
    ("create_volume_from_image", "create_volume"), ("disable_mirroring", "disable_mirroring"),
    ("restore_features", "restore_features")])
def test_boot_volume_a_failed_step_stops_there(step, task):
    script = boot_script(**{step: [(False, {"error": "%s broke" % step, "error_type": "X"})]})
    result, _ = run(script, workflow="migrate_boot_volume")
    assert result.status == "failed" and script.names()[-1] == step
    assert "failed at %s: %s broke" % (task, step) in result.output["outcome"]
    assert result.output["resume"] == ("st2 run ceph_migrate.migrate_boot_volume volume_id="
                                       + VOLUME)
    assert result.output["undo"] == ("st2 run ceph_migrate.rollback volume_id=%s procedure=boot"
                                     % VOLUME)
    up = "image %s was uploaded from the volume at the source" % GLANCE_IMAGE
    on = "mirroring of osglance/%s is on (its replica is at the destination)" % GLANCE_IMAGE
    copy = "the copy %s is in the destination Glance pool, not yet registered" % GLANCE_IMAGE
    registered = ("image %s is registered at the destination, no volume made from it yet"
                  % DEST_IMAGE)
    volume = "volume new-id is at the destination"
    assert result.output["left_changed"] == {
        "upload_volume_to_image": [], "enable_mirroring": [up], "copy_replica": [up, on],
        "create_snapshot": [up, on, copy], "verify_copy": [up, on, copy],
        "register_image": [up, on, copy], "create_volume_from_image": [up, on, registered],
        "disable_mirroring": [up, on, volume], "restore_features": [up, volume]}[step]


def test_boot_volume_failed_preflight_and_exhausted_waits():
    script = boot_script(plan_boot_volume_migration=[(False, {"ok": False, "checks": []})])
    result, _ = run(script, workflow="migrate_boot_volume")
    assert result.status == "failed" and script.names() == ["plan_boot_volume_migration"]
    timed_out = (False, {"in_sync": False, "timed_out": True})
    script = boot_script(wait_for_sync=[timed_out])
    result, _ = run(script, workflow="migrate_boot_volume", sync_retries=1)
    assert result.status == "failed" and script.names().count("wait_for_sync") == 2
    assert "copy_replica" not in script.names()


def test_boot_volume_rerun_cleans_up_the_uploaded_image_only():
    plan = boot_plan(already_migrated=earlier(image_id=GLANCE_IMAGE))
    script = boot_script(plan_boot_volume_migration=[(True, plan)])
    result, asked = run(script, workflow="migrate_boot_volume")
    assert result.status == "succeeded"
    assert script.names() == ["plan_boot_volume_migration", "gate_approvers",
                              "disable_mirroring", "restore_features"]
    assert dict(script.calls)["disable_mirroring"] == {"image": GLANCE_IMAGE, "pool": "osglance"}
    assert [t for t, _ in asked] == ["approve_cleanup"]


# -- rollback -------------------------------------------------------------------------------
def rollback_plan(**extra):
    return dict({"volume_id": VOLUME, "procedure": "data", "image_id": None,
                 "destination_project": {"id": "proj-1", "name": "tenant"},
                 "image": IMAGE, "pool": "oscinder", "copy_pool": "cinder-ct1",
                 "copy_image": IMAGE, "source_primary": True, "undo": ["..."]}, **extra)


def rollback_script(**plan):
    return Script(plan_rollback=[(True, rollback_plan(**plan))],
                  rollback_destination=[(True, {"changed": True,
                                                "undone": ["deleted volume new-id"]})],
                  remove_copy=[(True, {"changed": True, "removed": ["cinder-ct1/" + IMAGE],
                                       "kept": ["cinder-ct1/x.ceph_migrate-partial (...)"]})],
                  restore_features=[(True, {"changed": True, "removed": ["journaling"]})],
                  drop_sync_snapshots=[(True, {"changed": False, "removed": []})])


ROLLBACK = ["plan_rollback", "gate_approvers", "rollback_destination", "remove_copy",
            "disable_mirroring", "restore_features", "drop_sync_snapshots"]


def test_rollback_of_a_data_volume():
    script = rollback_script()
    result, asked = run(script, workflow="rollback")
    assert result.status == "succeeded", result.errors
    assert script.names() == ROLLBACK
    assert [t for t, _ in asked] == ["approve_rollback"]
    calls = dict(script.calls)
    assert calls["rollback_destination"] == {"source_id": VOLUME, "destination_project": "proj-1",
                                             "delete_data": True, "source_image_id": None}
    assert calls["disable_mirroring"] == {"image": IMAGE, "pool": "oscinder",
                                          "discard_replica": True}
    assert calls["remove_copy"] == {"image": IMAGE, "pool": "cinder-ct1",
                                    "source_image": IMAGE, "source_pool": "oscinder"}
    assert result.output["outcome"] == "rolled back; the source is as it was before the migration"
    assert result.output["undone"] == [
        "deleted volume new-id", "removed the copy cinder-ct1/" + IMAGE,
        "kept cinder-ct1/x.ceph_migrate-partial (...)", "disabled mirroring",
        "removed the feature journaling"]


def test_rollback_gives_a_demoted_source_its_primary_role_back_first():
    script = rollback_script(source_primary=False)
    result, _ = run(script, workflow="rollback")
    assert result.status == "succeeded"
    assert script.names() == ROLLBACK[:4] + ["demote_image", "promote_image"] + ROLLBACK[4:]
    calls = dict(script.calls)
    assert calls["demote_image"]["cluster"] == "destination"
    assert calls["promote_image"]["cluster"] == "source"


def test_a_rollback_whose_promote_fails_says_both_sides_are_read_only_and_how_to_recover():
    script = rollback_script(source_primary=False)
    script.results["promote_image"] = [(False, {"error": "EROFS", "error_type": "RbdError"})]
    result, _ = run(script, workflow="rollback")
    assert result.status == "failed" and script.names()[-1] == "promote_image"
    outcome = result.output["outcome"]
    assert outcome.startswith("failed at promote_source: EROFS. Both sides are read-only now")
    assert "st2 run ceph_migrate.rollback volume_id=%s procedure=data" % VOLUME in outcome
    assert ("st2 run ceph_migrate.promote_image image=%s pool=oscinder cluster=destination"
            % IMAGE) in outcome


def test_rollback_of_a_boot_volume_deletes_the_upload_last():
    script = rollback_script(procedure="boot", image_id=GLANCE_IMAGE, image=GLANCE_IMAGE,
                             pool="osglance", copy_pool="glance-ct1", copy_image=GLANCE_IMAGE)
    result, _ = run(script, workflow="rollback", procedure="boot")
    assert result.status == "succeeded"
    assert script.names() == ROLLBACK[:-1] + ["delete_uploaded_image"]
    assert dict(script.calls)["rollback_destination"]["source_image_id"] == GLANCE_IMAGE


def test_rollback_of_a_boot_volume_never_uploaded_and_of_a_ceph_only_config():
    script = rollback_script(procedure="boot", image=None, copy_image=None)
    result, _ = run(script, workflow="rollback", procedure="boot")
    assert result.status == "succeeded"
    assert script.names() == ROLLBACK[:3]
    script = rollback_script(destination_project=None)
    result, _ = run(script, workflow="rollback")
    assert result.status == "succeeded"
    assert "rollback_destination" not in script.names() and "remove_copy" in script.names()


@pytest.mark.parametrize("answer,words", [(False, "rejected"), (None, "no answer")])
def test_rollback_gate(answer, words):
    script = rollback_script()
    result, _ = run(script, workflow="rollback", answers={"approve_rollback": answer})
    assert result.status == "failed" and words in result.output["outcome"]
    assert script.names() == ["plan_rollback", "gate_approvers"]


def test_rollback_dry_run_lists_and_changes_nothing():
    script = rollback_script()
    result, asked = run(script, workflow="rollback", dry_run=True)
    assert result.status == "succeeded" and asked == [] and script.names() == ["plan_rollback"]
    assert result.output["plan"]["undo"] == ["..."]


@pytest.mark.parametrize("step,task", [
    ("plan_rollback", "plan"), ("gate_approvers", "approvers"),
    ("rollback_destination", "undo_destination"), ("remove_copy", "remove_copy"),
    ("disable_mirroring", "disable_mirroring"), ("restore_features", "restore_features")])
def test_rollback_a_failed_step_stops_there(step, task):
    script = rollback_script()
    script.results[step] = [(False, {"error": "%s broke" % step, "error_type": "X"})]
    result, _ = run(script, workflow="rollback")
    assert result.status == "failed" and script.names()[-1] == step
    assert result.output["outcome"] == "failed at %s: %s broke" % (task, step)


def test_a_step_that_fails_without_a_result_is_still_named():
    """A Python action that raises outside the pack's errors has no result, only stderr."""
    script = Script(copy_replica=lambda p: (False, None))
    result, _ = run(script)
    assert result.status == "failed" and result.output["failed_at"] == "copy_replica"
    assert result.output["outcome"].startswith("failed at copy_replica: ")


# -- migrate_batch --------------------------------------------------------------------------
VOLUMES = ["0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d1%d" % i for i in range(3)]


def test_batch_auto_picks_the_procedure_and_reports_every_volume():
    script = boot_script(describe_volume=lambda p: (True, {"bootable": p["volume_id"] ==
                                                           VOLUMES[1]}))
    result, asked = run(script, workflow="migrate_batch", volumes=VOLUMES, concurrency=2)
    assert result.status == "succeeded", result.errors
    assert script.names().count("plan_volume_migration") == 2
    assert script.names().count("plan_boot_volume_migration") == 1
    assert len(asked) == 9                              # every volume through its 3 gates
    output = result.output
    assert [r["volume_id"] for r in output["results"]] == VOLUMES
    assert [r["procedure"] for r in output["results"]] == ["data", "boot", "data"]
    assert output["migrated"] == VOLUMES and output["failed"] == []
    assert output["outcome"] == "3 of 3 volumes done"


def test_batch_a_failed_volume_does_not_stop_the_others():
    def plan(params):
        if params["volume_id"] == VOLUMES[0]:
            return False, {"ok": False, "checks": [{"check": "x", "ok": False, "detail": "bad"}]}
        return True, plan_result()
    script = Script(plan_volume_migration=plan)
    result, _ = run(script, workflow="migrate_batch", volumes=VOLUMES, procedure="data",
                    concurrency=1)
    assert result.status == "failed"
    assert script.names().count("manage_volume") == 2
    assert result.output["failed"] == VOLUMES[:1] and result.output["migrated"] == VOLUMES[1:]
    first = result.output["results"][0]
    assert first["status"] == "failed"
    assert first["outcome"] == "preflight failed, nothing was changed"
    assert result.output["outcome"] == "2 of 3 volumes done; failed: " + VOLUMES[0]


def test_batch_rejected_gate_for_every_volume_and_dry_run():
    script = Script()
    result, _ = run(script, workflow="migrate_batch", volumes=VOLUMES[:2], procedure="data",
                    answers={"approve_mirroring": False})
    assert result.status == "failed" and result.output["migrated"] == []
    assert "enable_mirroring" not in script.names()
    script = Script()
    result, asked = run(script, workflow="migrate_batch", volumes=VOLUMES, procedure="data",
                        dry_run=True)
    assert result.status == "succeeded" and asked == []
    assert set(script.names()) == {"plan_volume_migration"}
    assert result.output["outcome"] == "3 of 3 volumes done (dry run, nothing was changed)"


def test_batch_refuses_duplicates_and_a_failed_describe_is_one_failed_item():
    script = Script()
    result, _ = run(script, workflow="migrate_batch", volumes=[VOLUMES[0], VOLUMES[0]])
    assert result.status == "failed" and script.names() == []
    assert "listed twice" in result.output["outcome"]
    script = Script(describe_volume=[(False, {"error": "not found", "error_type": "NotFound"})])
    result, _ = run(script, workflow="migrate_batch", volumes=VOLUMES[:2])
    assert result.status == "failed" and result.output["failed"] == VOLUMES[:2]
    assert "not found" in result.output["results"][0]["outcome"]


# --------------------------------------------------------------------------- tenant infra

SOURCE_PROJECT = "0123456789abcdef0123456789abcdef"


def tenant_results(outcomes, dry_run):
    """import_tenant's result for these (kind, name, outcome)s (dry run: `changed` says
    what would change)."""
    results = [{"kind": k, "source_id": "s-%d" % i, "name": n, "outcome": o,
                "destination_id": None if dry_run else "d-%d" % i,
                "changed": o in ("created", "updated"), "detail": ""}
               for i, (k, n, o) in enumerate(outcomes)]
    summary = {o: sum(1 for r in results if r["outcome"] == o)
               for o in ("created", "updated", "adopted", "unchanged", "conflict")}
    return {"dry_run": dry_run, "changed": not dry_run and any(r["changed"] for r in results),
            "summary": summary, "results": results, "mapping": {},
            "project": {"id": DESTINATION_PROJECT, "name": "tenant"}, "passwords": [],
            "text": "%s: %s" % ("would" if dry_run else "done", summary)}


DESTINATION_PROJECT = "d" * 32


def tenant_script(planned, imported=None, clean=True, fits=True):
    def plan(params):
        return True, dict(tenant_results(planned, True), fits=fits, capacity={
            "images": {"fits": fits, "detail": "needs 9.0 GiB, 1.0 GiB left"}},
            text="would: ...\nimages: needs 9.0 GiB, 1.0 GiB left")
    return Script(**{
        "export_tenant": [(True, {"project": {"id": SOURCE_PROJECT, "name": "tenant"},
                                  "document": {"version": 1, "resources": {}}})],
        "plan_tenant_migration": plan,
        "import_tenant": lambda params: (True, tenant_results(imported or planned, False)),
        "compare_tenant": [(True, {"clean": clean, "differences": [] if clean else [
            {"kind": "network", "name": "app", "param": "mtu"}]})]})


NEW_NETWORK = [("network", "app", "created"), ("security_group", "default", "adopted")]


def run_tenant(script, answers=None, **inputs):
    inputs = dict({"project": "tenant", "destination_project": "tenant"}, **inputs)
    answers = dict({"approve_import": True}, **(answers or {}))
    asked = []

    def answer(task, params):
        asked.append((task, params))
        return None if answers[task] is None else {"approved": answers[task]}
    runner = LocalRunner({}, answer=answer, execute=script, delay_scale=0)
    return runner.run("ceph_migrate.migrate_tenant_infra", **inputs), asked


def test_tenant_infra_plans_asks_the_tenant_admin_imports_and_compares():
    script = tenant_script(NEW_NETWORK)
    result, asked = run_tenant(script, translation={"external_networks": {"a": "b"}})
    assert result.status == "succeeded", result.errors
    assert script.names() == ["export_tenant", "plan_tenant_migration", "gate_approvers",
                              "import_tenant", "compare_tenant"]
    assert [(t, p["route"], p["users"]) for t, p in asked] == [
        ("approve_import", "tenant_admin", ["tenant"])]
    plan, done = [p for n, p in script.calls if n in ("plan_tenant_migration", "import_tenant")]
    assert "dry_run" not in plan and "dry_run" not in done
    assert plan["passwords"] == done["passwords"] == "disabled"
    assert [p for n, p in script.calls if n == "export_tenant"] == [
        {"project": "tenant", "os_migrate_files": None}]
    assert plan["translation"] == done["translation"] == {"external_networks": {"a": "b"}}
    assert plan["export"] == {"version": 1, "resources": {}}
    assert result.output["outcome"].startswith("migrated and compared clean: done")
    assert result.output["summary"]["created"] == 1


def test_tenant_infra_dry_run_stops_after_the_plan():
    script = tenant_script(NEW_NETWORK)
    result, asked = run_tenant(script, dry_run=True)
    assert result.status == "succeeded" and asked == []
    assert script.names() == ["export_tenant", "plan_tenant_migration"]
    assert result.output["outcome"] == "dry run, nothing was changed"
    assert result.output["planned"].startswith("would:")


def test_tenant_infra_with_nothing_to_do_asks_nothing_and_still_compares():
    script = tenant_script([("network", "app", "unchanged")])
    result, asked = run_tenant(script)
    assert result.status == "succeeded" and asked == []
    assert script.names() == ["export_tenant", "plan_tenant_migration", "compare_tenant"]
    assert result.output["outcome"] == "already there, compared clean; nothing was changed"


def test_tenant_infra_conflicts_in_the_plan_stop_before_the_gate():
    script = tenant_script(NEW_NETWORK + [("router", "edge", "conflict")])
    result, asked = run_tenant(script)
    assert result.status == "failed" and asked == []
    assert script.names() == ["export_tenant", "plan_tenant_migration"]
    assert result.output["outcome"].startswith("the plan has 1 conflict(s); nothing was changed")


def test_tenant_infra_without_room_or_quota_stops_before_the_gate():
    script = tenant_script(NEW_NETWORK, fits=False)
    result, asked = run_tenant(script)
    assert result.status == "failed" and asked == []
    assert script.names() == ["export_tenant", "plan_tenant_migration"]
    assert result.output["outcome"].startswith(
        "the destination cannot hold the tenant (quotas or room); nothing was changed")
    assert "needs 9.0 GiB" in result.output["outcome"]
    assert result.output["capacity"]["images"]["fits"] is False


def test_tenant_infra_into_a_project_it_makes_compares_that_project():
    script = tenant_script(NEW_NETWORK)
    result, _ = run_tenant(script, destination_project=None, passwords="random")
    assert result.status == "succeeded", result.errors
    compared = [p for n, p in script.calls if n == "compare_tenant"][0]
    assert compared["destination_project"] == DESTINATION_PROJECT
    assert [p["passwords"] for n, p in script.calls if n == "import_tenant"] == ["random"]
    assert result.output["destination_project"]["id"] == DESTINATION_PROJECT


def test_tenant_infra_rejected_or_unclean_says_so_and_how_to_undo():
    script = tenant_script(NEW_NETWORK)
    result, _ = run_tenant(script, answers={"approve_import": False})
    assert result.status == "failed"
    assert script.names() == ["export_tenant", "plan_tenant_migration", "gate_approvers"]
    assert result.output["outcome"] == "import rejected by the tenant admin; nothing was changed"

    unclean = tenant_script(NEW_NETWORK, clean=False)
    result, _ = run_tenant(unclean)
    assert result.status == "failed"
    assert result.output["outcome"] == ("the destination differs from the export in 1 place(s) "
                                        "(see differences)")
    assert result.output["differences"] == [{"kind": "network", "name": "app", "param": "mtu"}]

    broken = tenant_script(NEW_NETWORK)
    broken.results["compare_tenant"] = [(False, {"error": "neutron down",
                                                 "error_type": "OpenStackError"})]
    result, _ = run_tenant(broken)
    assert result.status == "failed" and result.output["failed_at"] == "compare"
    assert result.output["outcome"] == (
        "failed at compare: neutron down. Re-run to finish (what is there is found again), or "
        "undo: st2 run ceph_migrate.rollback_tenant source_project_id=" + SOURCE_PROJECT)


# --------------------------------------------------------------------------- servers

SERVER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
COUNTERPART = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


def server_script(boots_from="image", volumes=0, ok=True, was_running=True, **overrides):
    disks = ([{"kind": "rbd", "role": "root"}] if boots_from == "image" else []) + \
        [{"kind": "volume", "role": "root" if boots_from == "volume" and i == 0 else "data"}
         for i in range(volumes)]
    server = {"id": SERVER, "name": "web", "boots_from": boots_from, "disks": disks,
              "disk_summary": "root rbd vms/%s_disk" % SERVER}
    parts = {"stop": {"changed": was_running, "was_running": was_running, "status": "SHUTOFF",
                      "requested_at": 990.0, "seconds": 4.0, "ended_at": 994.0},
             "final_sync": {"changed": True, "final": True, "bytes": 3 << 20, "disks": [],
                            "seconds": 2.5, "ended_at": 996.5}}
    if boots_from == "image":
        parts["register"] = {"changed": True, "image_id": DEST_IMAGE, "seconds": 1.5,
                             "ended_at": 998.0}
    if volumes:
        parts["manage"] = {"changed": True, "volumes": [], "seconds": 3.0, "ended_at": 1001.0}
    parts["create"] = {"changed": True, "outcome": "created", "server_id": COUNTERPART,
                       "status": "ACTIVE" if was_running else "SHUTOFF", "seconds": 2.0,
                       "ended_at": 1006.5}
    window = {"seconds": 16.5, "bytes": 3 << 20, "stop": 4.0, "final_sync": 2.5,
              "register": parts.get("register", {}).get("seconds"),
              "manage": parts.get("manage", {}).get("seconds"), "create": 2.0}
    window["text"] = "16.5 s (stop 4.0 s, final sync 2.5 s, ...)"
    results = {
        "plan_server_migration": [(True, {"ok": ok, "server": server, "checks": [],
                                          "text": "server web: ...\nok the server can be moved"
                                          if ok else "server web\nNO its references are at "
                                          "the destination: network n is not there"})],
        "sync_server_disks": [(True, {"changed": True, "final": False, "bytes": 300 << 20,
                                      "disks": [], "seconds": 40.0, "ended_at": 980.0})],
        "cutover_server": [(True, dict(parts, changed=True, downtime=window))],
        "release_source_server": [(True, {"changed": True, "locked": True})],
        "drop_server_snapshots": [(True, {"changed": True, "dropped": ["vms/x@s"]})]}
    results.update(overrides)
    return Script(**results)


def run_server(script, answers=None, **inputs):
    answers = dict({"approve_copy": True, "approve_cutover": True, "approve_cleanup": True},
                   **(answers or {}))
    asked = []

    def answer(task, params):
        asked.append((task, params))
        return None if answers[task] is None else {"approved": answers[task]}
    runner = LocalRunner({}, answer=answer, execute=script, delay_scale=0)
    return runner.run("ceph_migrate.migrate_server", server_id=SERVER, **inputs), asked


def test_a_server_copied_while_it_runs_then_cut_over_with_every_gate():
    script = server_script()
    result, asked = run_server(script)
    assert result.status == "succeeded", result.errors
    assert script.names() == ["plan_server_migration", "gate_approvers", "prepare_ports",
                              "sync_server_disks", "cutover_server", "release_source_server",
                              "drop_server_snapshots"]
    assert [(t, p["route"]) for t, p in asked] == [
        ("approve_copy", "ceph_admin"), ("approve_cutover", "tenant_admin"),
        ("approve_cleanup", "ceph_admin")]
    syncs = [p for n, p in script.calls if n == "sync_server_disks"]
    assert [(s.get("final"), s["max_rounds"]) for s in syncs] == [(None, 3)]
    assert [p for n, p in script.calls if n == "cutover_server"] == [
        {"server_id": SERVER, "root_target": "image", "ephemeral": False}]
    out = result.output
    assert out["downtime"] == {"seconds": 16.5, "stop": 4.0, "final_sync": 2.5,
                               "register": 1.5, "manage": None, "create": 2.0,
                               "bytes": 3 << 20,
                               "text": "16.5 s (stop 4.0 s, final sync 2.5 s, ...)"}
    assert out["outcome"].startswith("migrated as %s in a 16.5 s window" % COUNTERPART)
    assert (out["left_changed"], out["resume"], out["undo"]) == ([], None, None)


def test_a_root_landing_as_a_volume_is_asked_of_every_disk_step():
    script = server_script(volumes=1)
    result, _ = run_server(script, root_target="volume")
    assert result.status == "succeeded", result.errors
    asked = {n: p.get("root_target") for n, p in script.calls
             if n not in ("gate_approvers", "prepare_ports", "release_source_server")}
    assert asked == {"plan_server_migration": "volume", "sync_server_disks": "volume",
                     "cutover_server": "volume", "drop_server_snapshots": "volume"}, asked


def test_an_ephemeral_disk_carried_is_asked_of_every_disk_step():
    script = server_script()
    result, _ = run_server(script, ephemeral=True)
    assert result.status == "succeeded", result.errors
    asked = {n: p.get("ephemeral") for n, p in script.calls
             if n not in ("gate_approvers", "prepare_ports", "release_source_server")}
    assert asked == {"plan_server_migration": True, "sync_server_disks": True,
                     "cutover_server": True, "drop_server_snapshots": None}, asked


def test_a_volume_backed_server_cut_over_reports_its_volumes_phase():
    script = server_script(boots_from="volume", volumes=2, was_running=False)
    result, _ = run_server(script, max_rounds=5)
    assert result.status == "succeeded", result.errors
    assert [p.get("max_rounds") for n, p in script.calls if n == "sync_server_disks"] == [5]
    assert result.output["downtime"]["manage"] == 3.0
    assert result.output["downtime"]["register"] is None
    assert result.output["destination_server"]["status"] == "SHUTOFF"


def test_an_image_booted_server_with_volumes_reports_both_phases():
    script = server_script(volumes=1)
    result, _ = run_server(script)
    assert result.status == "succeeded", result.errors
    window = result.output["downtime"]
    assert (window["register"], window["manage"]) == (1.5, 3.0)


def test_a_server_the_plan_refuses_or_a_dry_run_changes_nothing_and_asks_nothing():
    script = server_script(ok=False)
    result, asked = run_server(script)
    assert result.status == "failed" and asked == []
    assert script.names() == ["plan_server_migration"]
    assert result.output["outcome"].startswith(
        "the plan says this server cannot move yet; nothing was changed:\nserver web")
    assert result.output["undo"] is None

    script = server_script()
    result, asked = run_server(script, dry_run=True)
    assert result.status == "succeeded" and asked == []
    assert script.names() == ["plan_server_migration"]
    assert result.output["outcome"].startswith("dry run, nothing was changed:\nserver web")
    assert result.output["resume"] is None


def test_a_rejected_cutover_leaves_the_server_running_and_says_what_to_undo():
    script = server_script()
    result, _ = run_server(script, answers={"approve_cutover": False})
    assert result.status == "failed"
    assert "stop_source_server" not in script.names()
    out = result.output
    assert out["outcome"].startswith("rejected by the tenant admin at the cutover; the server "
                                     "still runs at the source")
    assert out["left_changed"] == [
        "ports and floating IPs made at the destination for the server",
        "copies of its disks are in the destination pools",
        "sync snapshots (ceph_migrate-sync-N) of its disks are at the source"]
    assert out["undo"] == "st2 run ceph_migrate.rollback_server server_id=" + SERVER

    script = server_script()
    result, _ = run_server(script, answers={"approve_copy": False})
    assert result.status == "failed" and script.names() == [
        "plan_server_migration", "gate_approvers"]
    assert result.output["outcome"] == ("rejected by the Ceph admin before the copy; nothing "
                                        "was changed")
    assert result.output["undo"] is None


def test_a_server_whose_counterpart_fails_says_where_and_how_to_finish_or_undo():
    done = {"stop": {"was_running": True, "requested_at": 990.0},
            "final_sync": {"bytes": 1 << 20},
            "register": {"changed": True, "image_id": DEST_IMAGE}}
    script = server_script(cutover_server=[(False, {
        "error": "at create: the destination server x is in ERROR: No valid host was found",
        "error_type": "StepFailed", "failed_at": "create", "done": done})])
    result, _ = run_server(script)
    assert result.status == "failed"
    out = result.output
    assert out["failed_at"] == "cutover (create)"
    assert out["outcome"] == ("failed at cutover (create): at create: the destination server x "
                              "is in ERROR: No valid host was found")
    assert "the source server is stopped" in out["left_changed"]
    assert "its root is registered as image %s at the destination" % DEST_IMAGE in \
        out["left_changed"]
    assert out["resume"] == "st2 run ceph_migrate.migrate_server server_id=" + SERVER
    assert out["undo"] == "st2 run ceph_migrate.rollback_server server_id=" + SERVER
    assert out["downtime"] is None


def test_a_declined_cleanup_still_migrates_and_keeps_the_snapshots():
    script = server_script()
    result, _ = run_server(script, answers={"approve_cleanup": False})
    assert result.status == "succeeded", result.errors
    assert "drop_server_snapshots" not in script.names()
    assert result.output["outcome"].endswith(
        "cleanup declined, the sync snapshots are left at the source")


# -- migrate_servers ------------------------------------------------------------------------
SERVERS = ["5e1b7c1a-6f0e-4a57-8d7c-2b9e1f3a4c5%d" % i for i in range(3)]


def test_servers_in_a_wave_each_through_its_gates_one_failure_does_not_stop_the_rest():
    def plan(params):
        ok = params["server_id"] != SERVERS[1]
        return server_script(ok=ok).results["plan_server_migration"][0]
    script = server_script(plan_server_migration=plan)
    asked = []

    def answer(task, params):
        asked.append(task)
        return {"approved": True}
    runner = LocalRunner({}, answer=answer, execute=script, delay_scale=0)
    result = runner.run("ceph_migrate.migrate_servers", servers=SERVERS, concurrency=2,
                        max_rounds=4)
    assert result.status == "failed", result.errors
    out = result.output
    assert [(r["server_id"], r["status"]) for r in out["results"]] == [
        (SERVERS[0], "succeeded"), (SERVERS[1], "failed"), (SERVERS[2], "succeeded")]
    assert (out["migrated"], out["failed"]) == ([SERVERS[0], SERVERS[2]], [SERVERS[1]])
    assert out["outcome"] == "2 of 3 servers done; failed: " + SERVERS[1]
    assert out["results"][0]["downtime"]["seconds"] == 16.5
    assert out["results"][0]["destination_server"]["server_id"] == COUNTERPART
    assert out["results"][1]["outcome"].startswith("the plan says this server cannot move")
    assert asked.count("approve_cutover") == 2
    assert {p["max_rounds"] for n, p in script.calls if n == "sync_server_disks"} == {4}


def test_servers_dry_run_plans_each_and_a_listed_twice_server_changes_nothing():
    script = server_script()
    runner = LocalRunner({}, answer=lambda t, p: {"approved": True}, execute=script,
                         delay_scale=0)
    result = runner.run("ceph_migrate.migrate_servers", servers=SERVERS[:2], dry_run=True)
    assert result.status == "succeeded", result.errors
    assert script.names() == ["plan_server_migration"] * 2
    assert result.output["outcome"] == "2 of 2 servers done (dry run, nothing was changed)"
    result = runner.run("ceph_migrate.migrate_servers", servers=[SERVERS[0], SERVERS[0]])
    assert result.status == "failed" and "listed twice" in result.output["outcome"]
    assert script.names() == ["plan_server_migration"] * 2


def test_a_server_rerun_after_its_cutover_only_releases_and_cleans_then_does_nothing():
    """(and after its release, when its sync snapshots are left: the cleanup)"""
    counterpart = {"server_id": COUNTERPART, "name": "web", "status": "ACTIVE"}

    def planned(released, snapshots_left=()):
        plan = dict(server_script().results["plan_server_migration"][0][1],
                    counterpart=counterpart, released=released,
                    snapshots_left=list(snapshots_left),
                    text="server web is already at the destination as %s" % COUNTERPART)
        return [(True, plan)]
    script = server_script(plan_server_migration=planned(False))
    result, asked = run_server(script)
    assert result.status == "succeeded", result.errors
    assert script.names() == ["plan_server_migration", "gate_approvers",
                              "release_source_server", "drop_server_snapshots"]
    assert [t for t, _ in asked] == ["approve_cleanup"]
    assert result.output["outcome"].startswith(
        "migrated as %s after its cutover (an earlier run)" % COUNTERPART)
    script = server_script(plan_server_migration=planned(True))
    result, asked = run_server(script)
    assert result.status == "succeeded" and asked == [] and script.names() == [
        "plan_server_migration"]
    assert result.output["outcome"] == ("already migrated as %s, the source released; "
                                        "nothing to do" % COUNTERPART)
    # released by a run stopped before its cleanup: its sync snapshots are still there
    script = server_script(plan_server_migration=planned(True, ["vms/x_disk@ceph_migrate-sync-2"]))
    result, asked = run_server(script)
    assert result.status == "succeeded", result.errors
    assert script.names() == ["plan_server_migration", "gate_approvers",
                              "release_source_server", "drop_server_snapshots"]
    assert [t for t, _ in asked] == ["approve_cleanup"]
    result, asked = run_server(server_script(plan_server_migration=planned(False)),
                               dry_run=True)
    assert result.status == "succeeded" and asked == []
    assert result.output["outcome"].startswith("dry run, nothing was changed: server web is")


# -- migrate_tenant -------------------------------------------------------------------------
def whole_tenant_script(servers=SERVERS[:2], volumes=VOLUMES[:1], **overrides):
    results = dict(tenant_script(NEW_NETWORK).results)
    results.update(server_script().results)
    results.update({
        "tenant_workload": [(True, {
            "project": {"id": SOURCE_PROJECT, "name": "tenant"}, "skipped": [],
            "servers": [{"id": s, "name": "vm%d" % i, "status": "ACTIVE"}
                        for i, s in enumerate(servers)],
            "volumes": [{"id": v} for v in volumes], "server_ids": list(servers),
            "volume_ids": list(volumes)})],
        "describe_volume": [(True, {"bootable": False})],
        "compare_tenant": [(True, {"clean": True, "differences": [], "servers": {
            "migrated": [{"server_id": s} for s in servers], "not_migrated": []}})]})
    results.update(overrides)
    return Script(**results)


def run_whole_tenant(script, **inputs):
    asked = []

    def answer(task, params):
        asked.append(task)
        return {"approved": True}
    runner = LocalRunner({}, answer=answer, execute=script, delay_scale=0)
    return runner.run("ceph_migrate.migrate_tenant", project="tenant", **inputs), asked


def test_a_whole_tenant_infrastructure_then_volumes_then_servers_then_compared():
    script = whole_tenant_script()
    result, asked = run_whole_tenant(script, concurrency=3, max_rounds=2)
    assert result.status == "succeeded", result.errors
    names = script.names()
    assert names[:5] == ["export_tenant", "plan_tenant_migration", "gate_approvers",
                         "import_tenant", "compare_tenant"]
    assert names[5] == "tenant_workload" and names[-1] == "compare_tenant"
    # the volume before the servers, each server through its own gates
    assert names.index("manage_volume") < names.index("plan_server_migration")
    assert names.count("cutover_server") == 2 and asked.count("approve_copy") == 2
    assert asked.count("approve_cutover") == 3         # the volume's and each server's
    assert [p["destination_project"] for n, p in script.calls if n == "manage_volume"] == [
        DESTINATION_PROJECT]
    assert {p["max_rounds"] for n, p in script.calls if n == "sync_server_disks"} == {2}
    out = result.output
    assert out["outcome"] == "tenant migrated and compared clean: 2 server(s), 1 detached volume(s)"
    assert out["downtime"] == {s: out["server_results"][0]["downtime"] for s in SERVERS[:2]}
    assert out["report"].splitlines()[1:] == [
        "volumes: 1 of 1 volumes done", "servers: 2 of 2 servers done",
        "  server %s: down 16.5 s (stop 4.0 s, final sync 2.5 s, ...)" % SERVERS[0],
        "  server %s: down 16.5 s (stop 4.0 s, final sync 2.5 s, ...)" % SERVERS[1],
        "compared clean"]
    assert out["undo"] == ["st2 run ceph_migrate.rollback_server server_id=" + s
                           for s in SERVERS[:2]] + [
        "st2 run ceph_migrate.rollback_tenant source_project_id=" + SOURCE_PROJECT]


def test_a_whole_tenant_with_a_failed_server_goes_on_and_says_what_to_undo():
    def plan(params):
        return server_script(ok=params["server_id"] != SERVERS[0]).results[
            "plan_server_migration"][0]
    compared = {"clean": True, "differences": [],
                "servers": {"migrated": [], "not_migrated": [{"server_id": SERVERS[0]}]}}
    script = whole_tenant_script(volumes=[], plan_server_migration=plan,
                                 compare_tenant=[(True, compared)])
    result, _ = run_whole_tenant(script)
    assert result.status == "failed"
    assert "migrate_batch_item" not in script.names() and "manage_volume" not in script.names()
    out = result.output
    assert out["failed_at"] == "servers"
    assert out["outcome"].startswith("not all crossed: servers 1 of 2 servers done; failed: "
                                     + SERVERS[0])
    assert "1 server(s) not migrated" in out["outcome"]
    assert "volumes: none detached" in out["report"]
    assert out["undo"][0] == "st2 run ceph_migrate.rollback_server server_id=" + SERVERS[1]


def test_a_whole_tenant_dry_run_plans_the_infrastructure_and_lists_what_would_move():
    script = whole_tenant_script()
    result, asked = run_whole_tenant(script, dry_run=True)
    assert result.status == "succeeded" and asked == []
    assert script.names() == ["export_tenant", "plan_tenant_migration", "tenant_workload"]
    assert result.output["outcome"].startswith(
        "dry run, nothing was changed: the infrastructure as planned, then 1 detached "
        "volume(s) and 2 server(s)")
    assert result.output["undo"] == []
