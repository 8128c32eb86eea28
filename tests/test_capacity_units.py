"""Room before nearfull (lib.capacity) on `ceph df` / `ceph osd dump` recorded from the sandbox's
destination cluster (10 GiB, one OSD, full 0.95, nearfull 0.85)."""
import json
import os

import pytest

from lib.capacity import GIB, require_room, rooms
from lib.errors import RefusedError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "ceph")


class RecordedCeph:
    def __init__(self, **changes):
        with open(os.path.join(FIXTURES, "df.json")) as handle:
            self.df = json.load(handle)
        with open(os.path.join(FIXTURES, "osd-dump.json")) as handle:
            self.dump = json.load(handle)
        self.dump.update(changes)

    def run(self, *args):
        return self.df if args == ("df",) else self.dump


def test_room_stops_at_nearfull_not_at_full():
    ceph = RecordedCeph()
    room = rooms(ceph, ["cinder-ceph-pa1-cl1"])["cinder-ceph-pa1-cl1"].bytes
    max_avail = [p for p in ceph.df["pools"] if p["name"] == "cinder-ceph-pa1-cl1"][0]
    expected = max_avail["stats"]["max_avail"] - 0.1 * ceph.df["stats"]["total_bytes"]
    assert abs(room - expected) < 1024 ** 2
    assert room < max_avail["stats"]["max_avail"]


def test_replication_divides_the_spare_share():
    ceph = RecordedCeph()
    for pool in ceph.dump["pools"]:
        pool["size"] = 3
    tripled = rooms(ceph, ["oscinder"])["oscinder"].bytes
    single = rooms(RecordedCeph(), ["oscinder"])["oscinder"].bytes
    assert tripled > single


def test_a_migration_that_does_not_fit_is_refused_with_the_figures():
    ceph = RecordedCeph()
    room = rooms(ceph, ["oscinder", "cinder-ceph-pa1-cl1"])
    tight = min(r.bytes for r in room.values())
    assert "left before nearfull" in require_room(ceph, "x", list(room), tight - GIB)
    with pytest.raises(RefusedError, match=r"needs \d+\.\d GiB in oscinder and cinder-ceph-pa1-"
                                           r"cl1 at its peak, but pool .* left before the "
                                           r"cluster is nearfull"):
        require_room(ceph, "oscinder and cinder-ceph-pa1-cl1", list(room), tight + GIB)
    with pytest.raises(RefusedError, match="and the configured reserve"):
        require_room(ceph, "x", list(room), GIB, reserve=tight)


class DuImage:
    """An image whose `rbd du` answers as a Glance image's does: its data is its snapshot's."""
    name = "img"
    spec = "osglance/img"

    def __init__(self):
        self.cli = self

    def info(self):
        return {"size": 8 * 1024 ** 2}

    def run(self, *args):
        return {"images": [{"name": "img", "snapshot": "snap", "used_size": 4 * 1024 ** 2},
                           {"name": "img", "used_size": 0}]}


def test_a_glance_images_bytes_are_its_snapshots():
    from lib.capacity import written_by

    assert written_by(DuImage()) == 0
    assert written_by(DuImage(), snapshots=True) == 4 * 1024 ** 2
    assert written_by(DuImage(), thick=True) == 8 * 1024 ** 2
