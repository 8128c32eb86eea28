"""A batch of volumes or servers, each migrated by its own execution (migrate_batch_item,
migrate_server), at most ``concurrency`` at a time, scheduled in bounded rounds.

Why not an Orquesta with-items over the per-volume workflow: its gates pause each item's
subworkflow, StackStorm cascades the pause to the batch, and StackStorm 3.9 can leave a
with-items parent paused for good once items paused and resumed side by side (st2#4950: the
third volume of a batch of three, two at a time, never started). Separate executions never
pause the batch; the batch only starts them and watches them.

What was started is found again from StackStorm itself (the item executions carry the batch's
id as a parameter), so a round that died, or a re-run of the round, never starts a volume
twice.
"""
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

PAGE = 100      # StackStorm's API pages at 100 by default (api.max_page_size)
COMPLETED = ("succeeded", "failed", "timeout", "canceled", "abandoned")


class Executions(Protocol):
    """What a round needs of StackStorm's API (st2client in the action, a double in tests)."""

    def started(self, batch_id: str) -> List[Dict[str, Any]]:
        """The item executions of a batch: each with id, status, parameters, result."""

    def start(self, parameters: Dict[str, Any]) -> str:
        """Start one item execution; its id."""


@dataclass(frozen=True)
class Kind:
    """What a batch is of: the action each item runs as, and the parameter naming the item."""
    action: str
    key: str


VOLUMES = Kind("ceph_migrate.migrate_batch_item", "volume_id")
SERVERS = Kind("ceph_migrate.migrate_server", "server_id")


@dataclass
class Round:
    done: bool
    results: List[Dict[str, Any]]     # one per item, in the batch's order
    running: List[str]                # item ids whose execution has not completed
    waiting: List[str]                # item ids not started yet


def item_result(item_id: str, execution: Optional[Dict[str, Any]],
                kind: Kind = VOLUMES) -> Dict[str, Any]:
    """One item's line of the batch result: its execution's output (migrate_batch_item says
    its status; a migrate_server's is its execution's) and the execution; one that ended
    without output (canceled, abandoned) is a failed item that says so."""
    if execution is None:
        return {kind.key: item_id, "status": "waiting", "execution_id": None}
    status = execution.get("status")
    output = (execution.get("result") or {}).get("output")
    if status not in COMPLETED:
        return {kind.key: item_id, "status": "running", "execution_id": execution["id"]}
    if kind is not VOLUMES and isinstance(output, dict):
        output = dict(output, status="succeeded" if status == "succeeded" else "failed")
    if not isinstance(output, dict) or not output.get("status"):
        output = {"status": "failed", "outcome": "execution %s ended %s without a result"
                  % (execution["id"], status)}
    return dict(output, execution_id=execution["id"], **{kind.key: item_id})


def to_start(items: Sequence[str], started: Dict[Optional[str], Dict[str, Any]],
             concurrency: int) -> List[str]:
    """The items to start now: the next ones in the batch's order, as many as free slots."""
    running = sum(1 for e in started.values() if e.get("status") not in COMPLETED)
    free = max(0, concurrency - running)
    return [v for v in items if v not in started][:free]


def run_round(batch_id: str, items: Sequence[str], item_parameters: Dict[str, Any],
              concurrency: int, executions: Executions, seconds: float,
              poll_interval: float = 2.0, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic,
              log: Callable[[str], None] = lambda line: None, kind: Kind = VOLUMES) -> Round:
    """Start what may start, watch, start the next when one ends; return when every item's
    execution has completed, or after SECONDS (the workflow runs another round)."""
    deadline = clock() + seconds
    noun = kind.key[:-len("_id")]
    while True:
        started = _by_item(executions.started(batch_id), kind.key)
        for item_id in to_start(items, started, concurrency):
            execution_id = executions.start(dict(item_parameters, batch_id=batch_id,
                                                 **{kind.key: item_id}))
            started[item_id] = {"id": execution_id, "status": "requested"}
            log("%s %s: started execution %s" % (noun, item_id, execution_id))
        results = [item_result(v, started.get(v), kind) for v in items]
        running = [r[kind.key] for r in results if r["status"] == "running"]
        waiting = [r[kind.key] for r in results if r["status"] == "waiting"]
        if not running and not waiting:
            return Round(True, results, [], [])
        if clock() >= deadline:
            return Round(False, results, running, waiting)
        sleep(poll_interval)


def _by_item(executions: List[Dict[str, Any]], key: str
             ) -> Dict[Optional[str], Dict[str, Any]]:
    """item id -> its execution (the first one started, should there be more); one without
    an item id still takes a slot."""
    found: Dict[Optional[str], Dict[str, Any]] = {}
    for execution in sorted(executions, key=lambda e: e.get("start_timestamp") or ""):
        found.setdefault((execution.get("parameters") or {}).get(key), execution)
    return found


class ClientExecutions:
    """Executions over st2client (CLIENT, its LiveAction class): a batch's items are the
    executions of KIND's action started since the batch began whose batch_id is the
    batch's."""

    def __init__(self, client: Any, live_action: Any, batch_id: str,
                 requester: Optional[str] = None, kind: Kind = VOLUMES) -> None:
        self.client, self.live_action, self.kind = client, live_action, kind
        self.since = client.executions.get_by_id(batch_id).start_timestamp
        # who asked for the batch (a chat user) goes with each volume's run, as StackStorm
        # passes it down a workflow: respond_gate keeps them from approving its cutover
        self.context = {"api_user": requester} if requester else {}

    def started(self, batch_id: str) -> List[Dict[str, Any]]:
        found: List[Dict[str, Any]] = []
        offset = 0
        while True:
            page = self.client.executions.query(action=self.kind.action,
                                                timestamp_gt=self.since,
                                                limit=PAGE, offset=offset)
            found += [e.to_dict() for e in page
                      if (getattr(e, "parameters", None) or {}).get("batch_id") == batch_id]
            if len(page) < PAGE:
                return found
            offset += PAGE

    def start(self, parameters: Dict[str, Any]) -> str:
        execution = self.client.executions.create(
            self.live_action(action=self.kind.action, parameters=parameters,
                             context=self.context))
        return str(execution.id)
