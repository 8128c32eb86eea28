"""Live sync checks on recorded rbd outputs (the real-cluster runs are in the integration test)."""
import pytest

from lib import sync_check

MASTER = ("00000000  02 01 0d 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
          "00000010  00 00 00                                          |...|\n00000013\n")
SYNCING = ("00000000  02 01 90 00 00 00 01 00  00 00 0c 00 00 00 31 30  |..............10|\n"
           "00000010  33 36 62 34 64 33 61 63  37 34 00 00 00 00 00 00  |36b4d3ac74......|\n"
           "00000020  00 00 00 00 00 00 01 00  00 00 55 00 00 00 2e 72  |..........U....r|\n")
REPLAYING = ("00000000  02 01 38 00 00 00 01 00  00 00 0c 00 00 00 31 30  |..8...........10|\n"
             "00000010  33 36 62 34 64 33 61 63  37 34 01 00 00 00 40 00  |36b4d3ac74....@.|\n"
             "00000020  00 00 00 00 00 00 00 00  00 00 01 00 00 00 05 00  |................|\n"
             "00000030  00 00 00 00 00 00 05 00  00 00 00 00 00 00        |..............|\n"
             "0000003e\n")
POS_A = {"object_positions": [{"object_number": 3, "tag_tid": 1, "entry_tid": 3}]}
POS_B = {"object_positions": [{"object_number": 1, "tag_tid": 1, "entry_tid": 1}]}


def test_peer_client_state_decodes_real_journal_client_data():
    assert sync_check.peer_client_state(MASTER) is None      # the image's own client
    assert sync_check.peer_client_state(SYNCING) == "syncing"
    assert sync_check.peer_client_state(REPLAYING) == "replaying"
    assert sync_check.peer_client_state("") is None
    assert sync_check.peer_client_state("garbage |x|") is None


class FakeCli:
    def __init__(self, outputs):
        self.outputs = outputs

    def run(self, *args, **kwargs):
        return self.outputs[args[0]]


class FakeImage:
    def __init__(self, snaps=None, exists=True, journal=None, objects=64):
        self.pool, self.name, self.spec = "oscinder", "volume-1", "oscinder/volume-1"
        self._snaps, self._exists, self._objects = snaps or [], exists, objects
        self.cli = FakeCli({"journal": journal})

    def snapshots(self):
        return self._snaps

    def exists(self):
        return self._exists

    def find(self):
        return {"objects": self._objects} if self._exists else None


def mirror_snap(snap_id, state, **namespace):
    ns = {"type": "mirror", "state": state}
    ns.update(namespace)
    return {"id": snap_id, "name": ".mirror.%s.x" % state, "namespace": ns}


def test_snapshot_sync_needs_the_newest_primary_snapshot_complete():
    source = FakeImage([mirror_snap(4, "primary"), mirror_snap(7, "primary"),
                        {"id": 9, "name": "user", "namespace": {"type": "user"}}])
    old_only = FakeImage([mirror_snap(4, "non-primary", primary_snap_id=4, complete=True)])
    state = sync_check.snapshot_sync(source, old_only)
    assert not state.in_sync and "7 not started" in state.detail
    copying = FakeImage([mirror_snap(8, "non-primary", primary_snap_id=7, complete=False,
                                     last_copied_object_number=16)])
    state = sync_check.snapshot_sync(source, copying)
    assert not state.in_sync and state.percent == 25.0
    done = FakeImage([mirror_snap(8, "non-primary", primary_snap_id=7, complete=True)])
    assert sync_check.snapshot_sync(source, done).in_sync


def test_snapshot_sync_before_anything_exists():
    assert not sync_check.snapshot_sync(FakeImage([]), FakeImage([])).in_sync
    source = FakeImage([mirror_snap(4, "primary")])
    assert sync_check.snapshot_sync(source, FakeImage(exists=False)).detail == \
        "replica not created yet"


def test_a_demoted_snapshot_counts_as_the_newest():
    source = FakeImage([mirror_snap(4, "primary"), mirror_snap(5, "demoted")])
    replica = FakeImage([mirror_snap(6, "non-primary", primary_snap_id=4, complete=True)])
    assert not sync_check.snapshot_sync(source, replica).in_sync


def journal(*clients):
    return {"registered_clients": [dict(id=i, data=d, commit_position=p) for i, d, p in clients]}


@pytest.mark.parametrize("clients,in_sync,detail", [
    ([("", MASTER, POS_A)], False, "not registered"),
    ([("", MASTER, POS_A), ("peer", SYNCING, POS_A)], False, "initial image sync"),
    ([("", MASTER, POS_A), ("peer", REPLAYING, POS_B)], False, "behind"),
    ([("", MASTER, POS_A), ("peer", REPLAYING, POS_A)], True, "master commit position"),
])
def test_journal_sync(clients, in_sync, detail):
    state = sync_check.journal_sync(FakeImage(journal=journal(*clients)), FakeImage())
    assert state.in_sync is in_sync and detail in state.detail


def test_wait_for_sync_is_bounded_and_reports_progress():
    ticks = iter(range(100))
    polls = []
    source = FakeImage([mirror_snap(4, "primary")])
    replica = FakeImage([])
    result = sync_check.wait_for_sync("snapshot", source, replica, timeout=5, poll_interval=1,
                                      on_poll=polls.append, clock=lambda: next(ticks),
                                      sleep=lambda s: None)
    assert result["timed_out"] is True and result["in_sync"] is False
    assert result["waited_seconds"] >= 5 and len(polls) >= 3
