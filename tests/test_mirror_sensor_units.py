"""The rbd-mirror sensor's decisions on real recorded status JSON (tests/fixtures/rbd-status,
captured from the sandbox's rbd-mirror): one event per change, stalls after a quiet spell and
their end, errors once; and the sensor class dispatching payloads its trigger schemas accept."""
import json
import os

import pytest

from lib.mirror_watch import (ERRORED, PROGRESS, STALLED, SYNCED, MirrorWatch, identifiers)
from lib.replication_status import MirrorStatus
from st2_support import TESTS_DIR

FIXTURES = os.path.join(TESTS_DIR, "fixtures", "rbd-status")
VOLUME = "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"


def recorded(name, image=None):
    with open(os.path.join(FIXTURES, name + ".jsonl")) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if image:
        for row in rows:
            row["name"] = image
    return [MirrorStatus.from_json(row) for row in rows]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def kinds(events):
    return [trigger for trigger, _ in events]


def test_a_snapshot_sync_goes_waiting_progress_synced_each_once():
    waiting, bootstrapping, in_sync = recorded("snap2", "volume-" + VOLUME)
    watch = MirrorWatch(clock=Clock())
    assert watch.update("oscinder", [waiting]) == []
    events = watch.update("oscinder", [bootstrapping])
    assert kinds(events) == [PROGRESS]
    payload = events[0][1]
    assert payload["volume_id"] == VOLUME and payload["image_id"] is None
    assert payload["phase"] == "bootstrapping" and payload["percent"] == 0.0
    assert payload["mode"] == "snapshot" and payload["pool"] == "oscinder"
    assert watch.update("oscinder", [bootstrapping]) == []          # nothing changed
    events = watch.update("oscinder", [in_sync])
    assert kinds(events) == [SYNCED] and events[0][1]["percent"] == 100.0
    assert watch.update("oscinder", [in_sync]) == []


def test_a_journal_replay_reports_progress_then_synced():
    behind, in_sync = recorded("journal3")
    watch = MirrorWatch(clock=Clock())
    assert kinds(watch.update("oscinder", [behind])) == [PROGRESS]
    assert kinds(watch.update("oscinder", [in_sync])) == [SYNCED]


def test_a_glance_image_is_named_by_its_id():
    glance_id = "6f54328b-7232-4668-99d0-16ec3aae698e"
    status = recorded("glance-j", glance_id)[-1]
    ids = identifiers("osglance", status)
    assert ids["image_id"] == glance_id and ids["volume_id"] is None


def test_no_progress_for_stall_seconds_is_a_stall_once_and_it_clears():
    clock = Clock()
    _, bootstrapping, in_sync = recorded("snap2")
    watch = MirrorWatch(stall_seconds=60, clock=clock)
    watch.update("oscinder", [bootstrapping])
    clock.now += 59
    assert watch.update("oscinder", [bootstrapping]) == []
    clock.now += 1
    events = watch.update("oscinder", [bootstrapping])
    assert kinds(events) == [STALLED]
    assert events[0][1]["stalled"] is True and "no progress for 60s" in events[0][1]["reason"]
    clock.now += 600
    assert watch.update("oscinder", [bootstrapping]) == []         # once per change
    events = watch.update("oscinder", [in_sync])
    assert kinds(events) == [STALLED, SYNCED] and events[0][1]["stalled"] is False


def test_an_image_in_sync_never_stalls():
    clock = Clock()
    in_sync = recorded("snap")[-1]
    watch = MirrorWatch(stall_seconds=10, clock=clock)
    watch.update("oscinder", [in_sync])
    clock.now += 3600
    assert watch.update("oscinder", [in_sync]) == []


def with_state(status, state, description=None):
    row = {"name": status.name, "global_id": status.global_id, "state": state,
           "description": description if description is not None else status.description,
           "last_update": ""}
    return MirrorStatus.from_json(row)


def test_daemon_down_is_a_stall_at_once_and_its_return_clears_it():
    _, bootstrapping, in_sync = recorded("snap2")
    watch = MirrorWatch(stall_seconds=600, clock=Clock())
    watch.update("oscinder", [bootstrapping])
    down = with_state(bootstrapping, "down+replaying")
    events = watch.update("oscinder", [down])
    assert kinds(events) == [STALLED] and events[0][1]["reason"] == "rbd-mirror daemon is down"
    assert watch.update("oscinder", [down]) == []
    assert kinds(watch.update("oscinder", [in_sync])) == [STALLED, SYNCED]


def test_an_error_is_reported_once_per_description():
    in_sync = recorded("snap")[-1]
    watch = MirrorWatch(clock=Clock())
    broken = with_state(in_sync, "up+error", "split-brain detected")
    assert kinds(watch.update("oscinder", [broken])) == [ERRORED]
    assert watch.update("oscinder", [broken]) == []
    other = with_state(in_sync, "up+error", "failed to open local image")
    assert kinds(watch.update("oscinder", [other])) == [ERRORED]


def test_an_image_that_leaves_the_pool_status_is_forgotten():
    in_sync = recorded("snap")[-1]
    watch = MirrorWatch(clock=Clock())
    watch.update("oscinder", [in_sync])
    watch.update("oscinder", [])                  # mirroring disabled
    assert kinds(watch.update("oscinder", [in_sync])) == [SYNCED]   # mirrored again


@pytest.fixture
def mirror_sensor(make_sensor, monkeypatch):
    sensor = make_sensor("mirror_sensor", config={"sensors": {"mirror_poll_interval": 4,
                                                              "stall_seconds": 30}})
    module = type(sensor).poll.__globals__          # the sensor module, loaded like st2 does
    feed = {"oscinder": [], "osglance": []}
    calls = []

    def statuses(cli, pool):
        calls.append(pool)
        return feed[pool].pop(0) if feed[pool] else []
    monkeypatch.setitem(module, "pool_statuses", statuses)
    sensor.setup()
    return sensor, feed, calls


def test_the_sensor_polls_each_pool_once_and_dispatches_valid_payloads(mirror_sensor):
    sensor, feed, calls = mirror_sensor
    assert sensor.get_poll_interval() == 4
    _, bootstrapping, in_sync = recorded("snap2", "volume-" + VOLUME)
    glance = recorded("glance-j", "6f54328b-7232-4668-99d0-16ec3aae698e")
    feed["oscinder"] = [[bootstrapping], [in_sync]]
    feed["osglance"] = [[glance[1]], [glance[2]]]
    sensor.poll()
    sensor.poll()
    assert calls == ["oscinder", "osglance"] * 2
    service = sensor.sensor_service
    refs = [d["trigger"] for d in service.dispatched_triggers]
    assert refs == ["ceph_migrate.mirror_progress", "ceph_migrate.mirror_progress",
                    "ceph_migrate.mirror_synced", "ceph_migrate.mirror_synced"]
    # the waits' shortcut: a key per synced image
    key = "ceph_migrate.mirror_synced.oscinder.volume-" + VOLUME
    assert json.loads(service.get_value(key, local=False))["at"] > 0


def test_a_failing_status_call_is_logged_and_the_other_pool_still_polled(
        mirror_sensor, monkeypatch):
    from lib.errors import RbdError
    sensor, feed, calls = mirror_sensor
    module = type(sensor).poll.__globals__

    def broken(cli, pool):
        calls.append(pool)
        if pool == "oscinder":
            raise RbdError(["rbd"], 1, "boom")
        return [recorded("snap")[-1]]
    monkeypatch.setitem(module, "pool_statuses", broken)
    sensor.poll()
    assert calls == ["oscinder", "osglance"]
    assert [d["trigger"] for d in sensor.sensor_service.dispatched_triggers] == \
        ["ceph_migrate.mirror_synced"]
