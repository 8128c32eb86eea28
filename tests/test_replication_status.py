"""The status model against real ``rbd mirror image status`` JSON captured on the sandbox."""
import json
from pathlib import Path

import pytest

from lib import replication_status as rs

FIXTURES = Path(__file__).parent / "fixtures" / "rbd-status"


def samples(name):
    return [rs.MirrorStatus.from_text(line)
            for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["snap.jsonl", "snap2.jsonl", "journal.jsonl", "glance.jsonl",
                                  "glance-j.jsonl"])
def test_first_sample_is_waiting_for_rbd_mirror(name):
    first = samples(name)[0]
    assert first.phase == rs.WAITING
    assert first.last_update is None and not first.reports_in_sync
    assert first.mode == "unknown" and first.percent is None


def test_snapshot_mode_initial_sync_then_idle():
    _, syncing, idle = samples("snap2.jsonl")
    assert syncing.mode == "snapshot" and syncing.phase == rs.BOOTSTRAPPING
    assert syncing.percent == 0.0 and not syncing.reports_in_sync
    assert idle.phase == rs.IN_SYNC and idle.reports_in_sync
    assert idle.percent == 100.0 and idle.eta_seconds == 0.0
    assert idle.bytes_per_second == pytest.approx(35791394.13)
    assert idle.progress_key() != syncing.progress_key()


def test_journal_mode_replaying_behind_then_caught_up():
    behind, caught_up = samples("journal3.jsonl")
    assert behind.mode == "journal" and behind.phase == rs.REPLAYING
    assert behind.entries_behind == 16449 and behind.eta_seconds == 47.0
    assert not behind.reports_in_sync
    assert caught_up.phase == rs.IN_SYNC and caught_up.entries_behind == 0
    assert caught_up.reports_in_sync and caught_up.percent == 100.0


def test_journal_replaying_with_empty_replica_position_is_not_in_sync():
    _, replaying = samples("journal.jsonl")
    assert replaying.entries_behind == 3
    assert replaying.phase == rs.REPLAYING and not replaying.reports_in_sync


def test_journal_bootstrapping_is_recognised():
    _, bootstrapping, done = samples("glance-j.jsonl")
    assert bootstrapping.state == "up+syncing" and bootstrapping.phase == rs.BOOTSTRAPPING
    assert done.phase == rs.IN_SYNC


def test_percent_from_bootstrap_description():
    status = rs.MirrorStatus.from_json({"state": "up+syncing",
                                        "description": "bootstrapping, IMAGE_COPY/COPY_OBJECT 42%"})
    assert status.percent == 42.0 and status.phase == rs.BOOTSTRAPPING


@pytest.mark.parametrize("state,description,phase", [
    ("up+error", "split-brain detected", rs.ERROR),
    ("down+replaying", "replaying, {}", rs.DAEMON_DOWN),
    ("down+stopped", "stopped", rs.DAEMON_DOWN),
    ("up+unknown", "remote image demoted", rs.NOT_PRIMARY),
    ("up+unknown", "remote image is not primary", rs.NOT_PRIMARY),
    ("up+stopped", "local image is primary", rs.STOPPED),
])
def test_failure_and_failover_phases(state, description, phase):
    status = rs.MirrorStatus.from_json({"name": "x", "global_id": "g", "state": state,
                                        "description": description,
                                        "last_update": "2026-11-22 02:57:16"})
    assert status.phase == phase
    assert status.is_error == (phase == rs.ERROR)
    assert not status.reports_in_sync


def test_freshness_uses_last_update():
    _, idle = samples("snap.jsonl")
    assert idle.is_fresh(idle.last_update) and idle.is_fresh(idle.last_update - 30)
    assert not idle.is_fresh(idle.last_update + 1)


def test_as_dict_is_json_serialisable():
    for name in ("snap2.jsonl", "journal3.jsonl"):
        for status in samples(name):
            data = json.loads(json.dumps(status.as_dict()))
            assert data["phase"] == status.phase and data["state"] == status.state


def test_garbage_description_gives_no_details():
    status = rs.MirrorStatus.from_json({"state": "up+replaying", "description": "replaying, {oops"})
    assert status.details == {} and status.mode == "unknown" and not status.reports_in_sync
