"""Conduct a workflow of the pack with orquesta's own conductor, as StackStorm's workflow
engine does: next tasks, action executions, events back, the state serialised between events.

Actions: ``ceph_migrate.*`` python-script actions run in-process (real classes, real config);
``ceph_migrate.*`` orquesta actions run as subworkflows; ``core.ask`` gates are answered by
``answer(task_id, input)`` (a dict, or None for an inquiry that times out); ``core.noop`` and
``core.echo`` are built in. ``execute`` can replace the execution of python actions (scripted
results in the simulation tests); subworkflows still run through the conductor.

Every call is first checked as StackStorm checks a requested execution (runner.actions.check_call):
a call st2 refuses never reaches the action, ``execute`` or ``answer``; as in st2, its task fails
with ``{"errors": [...]}`` and the workflow fails at once (no failure transition is taken).
"""
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from runner import orquesta_compat  # noqa: F401  (must precede orquesta)
from runner.actions import (PACK_DIR, ParameterError, action_metadata, check_call, metadata,
                            parameters, run_python_action)

import yaml  # noqa: E402
from orquesta import conducting, events, statuses  # noqa: E402

sys.path.append(os.path.join(PACK_DIR, "actions"))
from lib.batch import item_result, SERVERS, VOLUMES  # noqa: E402
from orquesta.specs import native as native_specs  # noqa: E402

PACK = "ceph_migrate"
BATCH_ROUND = "ceph_migrate.run_batch"     # StackStorm starts executions there: run in place
Execute = Callable[[str, Dict[str, Any]], Tuple[bool, Any]]
Answer = Callable[[str, Dict[str, Any]], Optional[Dict[str, Any]]]
Log = Callable[[str], None]


class _St2WorkflowLoader(yaml.SafeLoader):
    """Safe YAML as StackStorm 3.9's orquesta reads a workflow (orquesta.utils.yml, not in the
    PyPI release the runner uses): its mapping constructor takes no merge key (``<<``) and no
    duplicate key, where plain safe_load takes both."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Dict[Any, Any]:
        mapping: Dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, "could not determine a constructor for the tag %r"
                    % key_node.tag, key_node.start_mark)
            key = self.construct_object(key_node, deep=deep)
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, 'found duplicate key "%s"' % key_node.value, key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_St2WorkflowLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                   _St2WorkflowLoader.construct_mapping)


def load_definition(text: str) -> Dict[str, Any]:
    """A workflow definition read as StackStorm reads it, refused with its words otherwise."""
    try:
        return yaml.load(text, Loader=_St2WorkflowLoader)
    except yaml.YAMLError as exc:
        raise ValueError("Failed to load workflow definition because %s." % exc) from None


# What orquesta's inspection found in a definition (a third of a simulated run's time): it
# depends on the text and the context's keys only, and those are always st2's.
_INSPECTED: Dict[str, Any] = {}


@dataclass
class TaskRun:
    task: str
    action: str
    status: str
    result: Any
    seconds: float
    item: Optional[int] = None


@dataclass
class WorkflowRun:
    ref: str
    status: str
    output: Any
    errors: List[Any] = field(default_factory=list)
    tasks: List[TaskRun] = field(default_factory=list)
    item_results: Dict[Tuple[str, int], List[Any]] = field(default_factory=dict, repr=False)

    def task(self, name: str) -> TaskRun:
        """The last execution of a task (retries keep the last)."""
        return [t for t in self.tasks if t.task == name][-1]

    def names(self) -> List[str]:
        return [t.task for t in self.tasks]


class LocalRunner:
    def __init__(self, config: Dict[str, Any], answer: Optional[Answer] = None,
                 execute: Optional[Execute] = None, log: Optional[Log] = None,
                 delay_scale: float = 1.0, pack_dir: str = PACK_DIR) -> None:
        self.config = config
        self.answer = answer or (lambda task, params: None)
        self.execute = execute or self._execute
        self.log = log or (lambda line: None)
        self.delay_scale = delay_scale
        self.pack_dir = pack_dir

    def spec(self, ref: str) -> native_specs.WorkflowSpec:
        return native_specs.WorkflowSpec(load_definition(self._definition(ref)))

    def _definition(self, ref: str) -> str:
        meta = metadata(_name(ref), self.pack_dir)
        with open("%s/actions/%s" % (self.pack_dir, meta["entry_point"])) as handle:
            return handle.read()

    def run(self, ref: str, **inputs: Any) -> WorkflowRun:
        """Run a workflow; invalid ``inputs`` raise ParameterError (a ValueError), as the st2 API
        answers 400 and starts nothing."""
        meta = metadata(_name(ref), self.pack_dir)
        definition = self._definition(ref)
        spec = native_specs.WorkflowSpec(load_definition(definition))
        st2 = {"st2": {"action_execution_id": uuid.uuid4().hex[:24], "user": "local",
                       "pack": PACK}}
        if definition not in _INSPECTED:    # as st2 inspects: with its own context
            _INSPECTED[definition] = spec.inspect(app_ctx=st2)
        problems = _INSPECTED[definition]
        if problems:
            raise ValueError("%s does not inspect clean: %s" % (ref, problems))
        conductor = conducting.WorkflowConductor(
            spec, inputs=parameters(meta, inputs),
            context=st2)
        conductor.request_workflow_status(statuses.RUNNING)
        run = WorkflowRun(ref=ref, status=statuses.RUNNING, output=None)
        state = conductor.serialize()
        while True:
            conductor = conducting.WorkflowConductor.deserialize(state)
            if conductor.get_workflow_status() in statuses.COMPLETED_STATUSES:
                break
            tasks = conductor.get_next_tasks()
            if not tasks:
                break
            for task in tasks:
                if task.get("delay"):
                    time.sleep(task["delay"] * self.delay_scale)
                for action in task["actions"]:
                    requested = self._run_task_action(conductor, task, action, run)
                    conductor = conducting.WorkflowConductor.deserialize(conductor.serialize())
                    if not requested:       # st2 stops requesting tasks once one is refused
                        break
                if conductor.get_workflow_status() in statuses.COMPLETED_STATUSES:
                    break
            state = conductor.serialize()
        conductor.render_workflow_output()      # st2's engine does this on completion, too
        run.status = conductor.get_workflow_status()
        run.output = conductor.get_workflow_output()
        run.errors = conductor.errors
        self.log("%s: %s" % (ref, run.status))
        return run

    def _run_task_action(self, conductor: Any, task: Dict[str, Any], action: Dict[str, Any],
                         run: WorkflowRun) -> bool:
        """Run one action of a task; False when st2 would have refused to request it."""
        item = action.get("item_id")
        # st2 hands a with-items task every item's result so far (``result()`` of the task)
        results = run.item_results.setdefault((task["id"], task["route"]),
                                              [None] * task.get("items_count", 0))

        def event(status: str, result: Any = None) -> Any:
            if item is not None:
                if status in statuses.COMPLETED_STATUSES:
                    results[item] = result
                return events.TaskItemActionExecutionEvent(item, status, result=result,
                                                           accumulated_result=list(results))
            return events.ActionExecutionEvent(status, result=result)

        task_id, route, ref = task["id"], task["route"], action["action"]
        params = action.get("input") or {}
        started = time.monotonic()
        try:
            params = self.check(ref, params)
        except ParameterError as exc:
            self._refuse(conductor, task, item, ref, exc, run)
            return False
        conductor.update_task_state(task_id, route, event(statuses.RUNNING))
        if ref == "core.ask":
            conductor.update_task_state(task_id, route, event(statuses.PENDING))
            response = self.answer(task_id, params)
            if conductor.get_workflow_status() == statuses.PAUSED:
                conductor.request_workflow_status(statuses.RESUMING)
            if response is None:
                ok, result = False, {"error": "inquiry timed out (no response)"}
            else:
                ok, result = True, {"response": response}
        elif ref == BATCH_ROUND:
            ok, result = self._batch(params)
        elif ref.startswith("core.") or self._is_workflow(ref):
            ok, result = self._execute(ref, params)
        else:
            ok, result = self.execute(ref, params)
        status = statuses.SUCCEEDED if ok else statuses.FAILED
        seconds = time.monotonic() - started
        run.tasks.append(TaskRun(task_id, ref, status, result, round(seconds, 2), item))
        self.log("  %-28s %-40s %s (%.1fs)" % (task_id + ("[%s]" % item if item is not None
                                                          else ""), ref, status, seconds))
        conductor.update_task_state(task_id, route, event(status, result))
        return True

    def check(self, ref: str, params: Dict[str, Any]) -> Dict[str, Any]:
        """The call's parameters as st2 records them (given values after its casts), or
        ParameterError for a call st2 refuses. An action unknown here is left to _execute."""
        try:
            meta = action_metadata(ref, self.pack_dir)
        except (LookupError, OSError):
            return params
        return check_call(meta, params).live

    def _refuse(self, conductor: Any, task: Dict[str, Any], item: Optional[int], ref: str,
                error: ParameterError, run: WorkflowRun) -> None:
        """What st2's workflow engine does when requesting a task's action raises: the task
        execution fails with the error, the workflow fails with it logged (no transition)."""
        task_id, route = task["id"], task["route"]
        message = "%s: %s" % (error.kind, error.detail)
        result = {"errors": [{"type": "error", "message": message, "task_id": task_id,
                              "route": route}]}
        run.tasks.append(TaskRun(task_id, ref, statuses.FAILED, result, 0.0, item))
        self.log("  %-28s %-40s %s (%s)" % (task_id, ref, statuses.FAILED, error))
        conductor.request_workflow_status(statuses.FAILED)
        conductor.log_entry("error", message, task_id=task_id, route=route)

    def _batch(self, params: Dict[str, Any]) -> Tuple[bool, Any]:
        """A batch's round (run_batch): StackStorm starts each volume's migrate_batch_item (or
        server's migrate_server) as an execution of its own; the local runner runs them here,
        one after another, through the conductor, and reports the batch done."""
        kind = SERVERS if params.get("servers") else VOLUMES
        if kind is SERVERS:
            item = {k: params[k] for k in ("max_rounds", "root_target", "ephemeral", "dry_run",
                                           "batch_id") if params.get(k) is not None}
        else:
            item = {k: v for k, v in params.items() if k not in (
                "volumes", "servers", "max_rounds", "root_target", "ephemeral", "concurrency",
                "round_seconds")}
        results = []
        for item_id in params["servers"] if kind is SERVERS else params["volumes"]:
            ok, sub = self._execute(kind.action, dict(item, **{kind.key: item_id}))
            output = sub.get("output") if isinstance(sub, dict) else None
            results.append(item_result(item_id, {"id": "local", "status": "succeeded" if ok
                                                 else "failed",
                                                 "result": {"output": output}}, kind))
        return True, python_result(True, {"done": True, "results": results, "running": [],
                                          "waiting": []})

    def _is_workflow(self, ref: str) -> bool:
        return (ref.startswith(PACK + ".")
                and metadata(_name(ref), self.pack_dir)["runner_type"] == "orquesta")

    def _execute(self, ref: str, params: Dict[str, Any]) -> Tuple[bool, Any]:
        if ref == "core.noop":
            return True, {}
        if ref == "core.echo":
            return True, {"stdout": params.get("message", "")}
        if not ref.startswith(PACK + "."):
            return False, {"error": "the local runner cannot run %s" % ref}
        name = _name(ref)
        try:
            if metadata(name, self.pack_dir)["runner_type"] == "orquesta":
                sub = self.run(ref, **params)
                return sub.status == statuses.SUCCEEDED, {"output": sub.output,
                                                          "errors": sub.errors}
            ok, value = run_python_action(name, self.config, params, self.pack_dir)
            return ok, python_result(ok, value)
        except Exception:  # StackStorm records a failed execution with the traceback
            return False, python_result(False, None, traceback.format_exc())


def python_result(ok: bool, value: Any, stderr: str = "") -> Dict[str, Any]:
    """The shape st2's python runner gives a workflow: ``result().result`` is what run()
    returned (also for ``(False, value)``)."""
    return {"result": value, "exit_code": 0 if ok else 1, "stdout": "", "stderr": stderr}


def _name(ref: str) -> str:
    pack, _, name = ref.partition(".")
    if pack != PACK or not name:
        raise ValueError("not an action of this pack: %r" % ref)
    return name
