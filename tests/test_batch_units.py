"""The batch scheduler (lib.batch): at most `concurrency` volumes at a time, in order, never a
volume started twice (a round that re-runs finds what the batch started), every volume's
outcome reported, also for an execution that ended without one."""
from lib.batch import COMPLETED, item_result, run_round, to_start

BATCH = "6b0dd6659369874f1136f06a"


class FakeStackStorm:
    """Item executions that complete after a number of polls each (by volume)."""

    def __init__(self, polls_to_finish, status="succeeded"):
        self.polls_to_finish = dict(polls_to_finish)
        self.final = status
        self.executions = []
        self.most_running = 0

    def started(self, batch_id):
        for execution in self.executions:
            if execution["status"] in COMPLETED:
                continue
            execution["polls"] += 1
            if execution["polls"] >= self.polls_to_finish[execution["parameters"]["volume_id"]]:
                volume_id = execution["parameters"]["volume_id"]
                execution["status"] = self.final
                execution["result"] = {"output": {"volume_id": volume_id, "status": "succeeded",
                                                  "procedure": "data", "outcome": "migrated"}}
        running = sum(1 for e in self.executions if e["status"] not in COMPLETED)
        self.most_running = max(self.most_running, running)
        return [dict(e) for e in self.executions
                if e["parameters"].get("batch_id") == batch_id]

    def start(self, parameters):
        execution_id = "%024x" % (len(self.executions) + 1)
        self.executions.append({"id": execution_id, "status": "running", "polls": 0,
                                "parameters": parameters, "start_timestamp": execution_id})
        return execution_id


def _round(st2, volumes, concurrency=2, seconds=1000):
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds

    return run_round(BATCH, volumes, {"procedure": "data"}, concurrency, st2, seconds,
                     poll_interval=1, sleep=sleep, clock=lambda: clock[0])


def test_volumes_start_in_order_never_more_than_the_concurrency():
    volumes = ["a", "b", "c", "d", "e"]
    st2 = FakeStackStorm({"a": 3, "b": 1, "c": 5, "d": 2, "e": 1})
    done = _round(st2, volumes)
    assert done.done and st2.most_running == 2
    assert [e["parameters"]["volume_id"] for e in st2.executions] == volumes
    assert all(e["parameters"]["batch_id"] == BATCH for e in st2.executions)
    assert [r["volume_id"] for r in done.results] == volumes
    assert {r["status"] for r in done.results} == {"succeeded"}
    assert len({r["execution_id"] for r in done.results}) == 5


def test_a_round_ends_at_its_deadline_and_the_next_starts_nothing_twice():
    st2 = FakeStackStorm({"a": 10, "b": 10, "c": 1})
    first = _round(st2, ["a", "b", "c"], seconds=3)
    assert not first.done and first.running == ["a", "b"] and first.waiting == ["c"]
    assert [r["status"] for r in first.results] == ["running", "running", "waiting"]
    second = _round(st2, ["a", "b", "c"])
    assert second.done
    assert [e["parameters"]["volume_id"] for e in st2.executions] == ["a", "b", "c"]


def test_an_execution_without_output_is_a_failed_volume_that_says_why():
    result = item_result("a", {"id": "x" * 24, "status": "canceled", "result": {}})
    assert result["status"] == "failed" and result["execution_id"] == "x" * 24
    assert result["outcome"] == "execution %s ended canceled without a result" % ("x" * 24)
    assert item_result("b", None) == {"volume_id": "b", "status": "waiting",
                                      "execution_id": None}


def test_free_slots_are_filled_in_the_batch_order():
    started = {"a": {"status": "succeeded"}, "b": {"status": "running"}}
    assert to_start(["a", "b", "c", "d"], started, 2) == ["c"]
    assert to_start(["a", "b", "c", "d"], started, 3) == ["c", "d"]
    assert to_start(["a", "b"], started, 1) == []


def test_a_server_is_as_its_execution_ended_with_its_output():
    from lib.batch import SERVERS
    ended = {"id": "y" * 24, "status": "failed",
             "result": {"output": {"outcome": "rejected by the tenant admin at the cutover",
                                   "undo": "st2 run ceph_migrate.rollback_server"}}}
    result = item_result("s", ended, SERVERS)
    assert (result["server_id"], result["status"], result["outcome"], result["undo"]) == (
        "s", "failed", "rejected by the tenant admin at the cutover",
        "st2 run ceph_migrate.rollback_server")
    ended.update(status="succeeded", result={"output": {"outcome": "migrated"}})
    assert item_result("s", ended, SERVERS)["status"] == "succeeded"
    assert item_result("t", {"id": "z" * 24, "status": "running"}, SERVERS) == {
        "server_id": "t", "status": "running", "execution_id": "z" * 24}
