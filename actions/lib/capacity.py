"""Room in a cluster's pools before a migration writes there.

A full OSD stops every tenant's writes, not only the migration's; Ceph's ``nearfull`` ratio is
where operators start to worry. So the plan compares what the migration will write at its peak
with what the pools can take before the cluster reaches nearfull (less a configured reserve),
and refuses what does not fit. Read-only: ``ceph df`` and ``ceph osd dump`` (the pack's
least-privilege user may run both) and ``rbd du``.
"""
from dataclasses import dataclass
from typing import Any, Dict, Sequence

from .ceph_cli import CephCli
from .errors import CephMigrateError, RefusedError
from .rbd_image import RbdImage

GIB = 1024 ** 3


@dataclass(frozen=True)
class Room:
    pool: str
    bytes: int               # what the pool can still take before the cluster is nearfull


def rooms(ceph: CephCli, pools: Sequence[str], reserve: int = 0) -> Dict[str, Room]:
    """Each pool's room: its MAX AVAIL (reckoned by Ceph up to the full ratio, per replica)
    less the share between nearfull and full, less RESERVE bytes."""
    df = ceph.run("df")
    dump = ceph.run("osd", "dump")
    total = int(df["stats"]["total_bytes"])
    spare = (float(dump["full_ratio"]) - float(dump["nearfull_ratio"])) * total
    sizes = {p["pool_name"]: max(1, int(p.get("size") or 1)) for p in dump["pools"]}
    found = {}
    for entry in df["pools"]:
        name = entry["name"]
        if name in pools:
            room = int(entry["stats"]["max_avail"] - spare / sizes.get(name, 1)) - reserve
            found[name] = Room(name, max(0, room))
    missing = sorted(set(pools) - set(found))
    if missing:
        raise CephMigrateError("ceph df does not list pool(s) %s" % ", ".join(missing))
    return found


def written_by(image: RbdImage, thick: bool = False, snapshots: bool = False) -> int:
    """Bytes a copy of IMAGE takes: what ``rbd du`` says it uses (its provisioned size when
    THICK, or when du cannot tell in time); with SNAPSHOTS, what its snapshots hold too (a
    Glance image's data is its snapshot's: its head holds nothing of its own)."""
    info = image.info()
    if thick:
        return int(info["size"])
    try:
        usage = image.cli.run("du", image.spec)
    except CephMigrateError:
        return int(info["size"])
    entries = [e for e in (usage or {}).get("images", []) if e.get("name") == image.name
               and (snapshots or "snapshot" not in e)]
    if not entries:
        return int(info["size"])
    return min(int(info["size"]), sum(int(e.get("used_size", info["size"])) for e in entries))


def require_room(ceph: CephCli, where: str, pools: Sequence[str], needed: int,
                 reserve: int = 0) -> str:
    """The check's detail when NEEDED bytes fit in the smallest room of POOLS (pools of one
    cluster share its OSDs: the peak must fit in each); RefusedError saying how much is
    missing otherwise."""
    found = rooms(ceph, pools, reserve)
    tightest = min(found.values(), key=lambda room: room.bytes)
    if needed > tightest.bytes:
        raise RefusedError(
            "%s needs %s in %s at its peak, but pool %s has %s left before the cluster is "
            "nearfull%s: free space or add OSDs first" % (
                "the migration", _gib(needed), where, tightest.pool, _gib(tightest.bytes),
                " and the configured reserve" if reserve else ""))
    return "needs %s in %s, %s left before nearfull" % (_gib(needed), where,
                                                        _gib(tightest.bytes))


def _gib(value: Any) -> str:
    return "%.1f GiB" % (float(value) / GIB)
