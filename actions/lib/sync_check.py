"""Live answers to "is the replica in sync?" that a 30 s-stale mirror status cannot fool.

Snapshot mode: the newest primary mirror snapshot on the source has a complete non-primary
twin (``primary_snap_id``) on the destination. Journal mode: rbd-mirror's journal client on the
primary is past its initial sync (client state ``replaying``) and every registered client sits at
the master commit position. The master position is flushed every few seconds or on close, so
after I/O stops the check is exact; a content comparison still precedes any cleanup.
"""
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from .errors import RefusedError
from .replication_status import MirrorStatus
from .rbd_image import RbdImage, mirroring

MIRROR_PEER_CLIENT_META = 1          # journal::ClientMetaType
PEER_STATES = {0: "syncing", 1: "replaying"}  # journal::MirrorPeerState


@dataclass
class SyncState:
    in_sync: bool
    mode: str
    detail: str
    percent: Optional[float] = None

    def as_dict(self) -> Dict[str, Any]:
        return {"in_sync": self.in_sync, "mode": self.mode, "detail": self.detail,
                "percent": self.percent}


def snapshot_sync(source: RbdImage, replica: RbdImage) -> SyncState:
    primary = [s for s in source.snapshots() if _mirror_state(s) in ("primary", "demoted")]
    if not primary:
        return SyncState(False, "snapshot", "no mirror snapshot on the source yet")
    newest = max(primary, key=lambda s: s["id"])
    if not replica.exists():
        return SyncState(False, "snapshot", "replica not created yet", 0.0)
    twins = [s for s in replica.snapshots() if _mirror_state(s) == "non-primary"
             and s["namespace"].get("primary_snap_id") == newest["id"]]
    if not twins:
        return SyncState(False, "snapshot",
                         "mirror snapshot %d not started on the replica" % newest["id"], None)
    twin = twins[0]["namespace"]
    if twin.get("complete"):
        return SyncState(True, "snapshot", "mirror snapshot %d complete on the replica"
                         % newest["id"], 100.0)
    objects = _object_count(source)
    copied = twin.get("last_copied_object_number") or 0
    percent = round(100.0 * copied / objects, 1) if objects else None
    return SyncState(False, "snapshot", "copying mirror snapshot %d (%s/%s objects)"
                     % (newest["id"], copied, objects), percent)


def journal_sync(source: RbdImage, replica: RbdImage) -> SyncState:
    journal = source.cli.run("journal", "status", "--pool", source.pool,
                             "--image", source.name) or {}
    clients = journal.get("registered_clients", [])
    master = next((c for c in clients if c.get("id") == ""), None)
    peers = [c for c in clients if c.get("id") != ""]
    if master is None or not peers:
        return SyncState(False, "journal", "rbd-mirror has not registered with the journal yet")
    for peer in peers:
        state = peer_client_state(peer.get("data", ""))
        if state != "replaying":
            return SyncState(False, "journal", "initial image sync in progress (peer %s)"
                             % (state or "unknown"))
    behind = [c["id"] for c in peers if _positions(c) != _positions(master)]
    if behind:
        return SyncState(False, "journal", "replaying: peer behind the master position")
    if not replica.exists():
        return SyncState(False, "journal", "replica not created yet")
    return SyncState(True, "journal", "replica at the master commit position", 100.0)


def live_sync(mode: str, source: RbdImage, replica: RbdImage) -> SyncState:
    return (snapshot_sync if mode == "snapshot" else journal_sync)(source, replica)


def wait_for_sync(mode: str, source: RbdImage, replica: RbdImage, timeout: float,
                  poll_interval: float, on_poll: Optional[Callable[[SyncState], None]] = None,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Poll the live check until in sync or ``timeout``; never raises on a timeout."""
    started = clock()
    while True:
        state = live_sync(mode, source, replica)
        if on_poll:
            on_poll(state)
        waited = clock() - started
        if state.in_sync or waited >= timeout:
            result = state.as_dict()
            result.update(waited_seconds=round(waited, 1), timed_out=not state.in_sync)
            return result
        sleep(min(poll_interval, max(0.0, timeout - waited)))


def replica_status(replica: RbdImage) -> Optional[MirrorStatus]:
    """The (possibly stale) status rbd-mirror reports on the destination, if any."""
    data = replica.cli.run("mirror", "image", "status", replica.spec)
    return MirrorStatus.from_json(data) if data else None


def peer_client_state(hexdump: str) -> Optional[str]:
    """Decode the state of rbd-mirror's journal client from ``rbd journal status`` data.

    The data is a hexdump of an encoded ClientData: version, compat, length (u8, u8, u32le),
    then the meta type (u32le, 1 = mirror peer), the local image id (u32le length + bytes) and
    the peer state (u32le: 0 syncing, 1 replaying). Anything else decodes to None.
    """
    raw = _hexdump_bytes(hexdump)
    if len(raw) < 14:
        return None
    offset = 6
    meta_type = int.from_bytes(raw[offset:offset + 4], "little")
    if meta_type != MIRROR_PEER_CLIENT_META:
        return None
    offset += 4
    id_len = int.from_bytes(raw[offset:offset + 4], "little")
    offset += 4 + id_len
    if len(raw) < offset + 4:
        return None
    return PEER_STATES.get(int.from_bytes(raw[offset:offset + 4], "little"))


def _hexdump_bytes(hexdump: str) -> bytes:
    """Bytes of a ``hexdump -C`` style text: offset, 16 hex bytes, ``|ascii|``."""
    out = bytearray()
    for line in hexdump.splitlines():
        body = line.split("|", 1)[0].split()
        for token in body[1:]:
            if len(token) == 2:
                try:
                    out.append(int(token, 16))
                except ValueError:
                    break
    return bytes(out)


def _positions(client: Dict[str, Any]) -> List[Any]:
    return (client.get("commit_position") or {}).get("object_positions") or []


def _mirror_state(snapshot: Dict[str, Any]) -> Optional[str]:
    namespace = snapshot.get("namespace") or {}
    return namespace.get("state") if namespace.get("type") == "mirror" else None


def _object_count(image: RbdImage) -> int:
    info = image.find() or {}
    return int(info.get("objects") or 0)


def mirrored_mode(source: RbdImage) -> str:
    """The mode the source is mirrored in; RefusedError when it is not mirrored as a primary."""
    state = mirroring(source.info())
    if state["state"] != "enabled":
        raise RefusedError("%r is not mirrored (mirroring %s)" % (source, state["state"]))
    if not state["primary"]:
        raise RefusedError("%r is not the primary: check the sync from the primary's side"
                           % source)
    return str(state["mode"])


def mirror_status(source: RbdImage, replica: RbdImage) -> Dict[str, Any]:
    """Live sync state plus rbd-mirror's own status (progress, rate, ETA; maybe ~30 s old)."""
    mode = mirrored_mode(source)
    report = live_sync(mode, source, replica).as_dict()
    status = replica_status(replica) if replica.exists() else None
    report["status"] = status.as_dict() if status else None
    if status and status.is_error:
        report["error"] = status.description
    return report
