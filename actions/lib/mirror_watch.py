"""What the rbd-mirror sensor reports: successive pool-status polls turned into events, each
once per change (progress, in sync, stalled and its end, error), with the migration's ids.

One ``rbd mirror pool status --verbose`` per pool per poll on the destination cluster serves
every image of the pool, so the cost of a poll does not grow with the number of images.
"""
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .ceph_cli import CephCli
from .replication_status import (BOOTSTRAPPING, DAEMON_DOWN, ERROR, IN_SYNC, REPLAYING,
                                 SYNCING, MirrorStatus)

PROGRESS, SYNCED, STALLED, ERRORED = ("mirror_progress", "mirror_synced", "mirror_stalled",
                                      "mirror_error")
MOVING = (BOOTSTRAPPING, SYNCING, REPLAYING)
_VOLUME = re.compile(r"^volume-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
Event = Tuple[str, Dict[str, Any]]


def pool_statuses(cli: CephCli, pool: str) -> List[MirrorStatus]:
    """Every mirrored image of ``pool`` in one call (as seen by this cluster's rbd-mirror)."""
    data = cli.run("mirror", "pool", "status", "--verbose", pool) or {}
    return [MirrorStatus.from_json(image) for image in data.get("images") or []]


def identifiers(pool: str, status: MirrorStatus) -> Dict[str, Any]:
    """Which migration an image belongs to: a Cinder volume (volume-<id>) or a Glance image
    (named by its id)."""
    volume = _VOLUME.match(status.name)
    return {"pool": pool, "image": status.name, "global_id": status.global_id,
            "volume_id": volume.group(1) if volume else None,
            "image_id": status.name if _UUID.match(status.name) else None}


@dataclass
class _Seen:
    phase: str
    percent: Optional[int]
    progress_key: Tuple[Any, ...]
    moved_at: float
    stalled: bool = False
    error: Optional[str] = None


@dataclass
class MirrorWatch:
    """Remembers what each image looked like at the last poll; ``update`` returns the events
    of this poll. An image that leaves the status (mirroring disabled) is forgotten."""

    stall_seconds: float = 120.0
    clock: Callable[[], float] = time.monotonic
    seen: Dict[Tuple[str, str], _Seen] = field(default_factory=dict)

    def update(self, pool: str, statuses: Iterable[MirrorStatus]) -> List[Event]:
        now = self.clock()
        events: List[Event] = []
        present = set()
        for status in statuses:
            key = (pool, status.global_id or status.name)
            present.add(key)
            events.extend(self._image(key, pool, status, now))
        for key in [k for k in self.seen if k[0] == pool and k not in present]:
            del self.seen[key]
        return events

    def _image(self, key: Tuple[str, str], pool: str, status: MirrorStatus,
               now: float) -> List[Event]:
        phase = status.phase
        percent = None if status.percent is None else int(status.percent)
        previous = self.seen.get(key)
        progress_key = status.progress_key()
        moved = previous is None or progress_key != previous.progress_key
        current = _Seen(phase, percent, progress_key,
                        now if moved else previous.moved_at,   # type: ignore[union-attr]
                        previous.stalled if previous else False,
                        previous.error if previous else None)
        self.seen[key] = current
        payload = dict(identifiers(pool, status), mode=status.mode, phase=phase,
                       percent=status.percent, bytes_per_second=status.bytes_per_second,
                       eta_seconds=status.eta_seconds, description=status.description)
        events: List[Event] = []
        if phase == ERROR:
            if current.error != status.description:
                current.error = status.description
                events.append((ERRORED, payload))
            return events
        current.error = None
        stuck = phase == DAEMON_DOWN or (phase in MOVING and
                                         now - current.moved_at >= self.stall_seconds)
        if stuck and not current.stalled:
            current.stalled = True
            reason = ("rbd-mirror daemon is down" if phase == DAEMON_DOWN else
                      "no progress for %ds" % int(now - current.moved_at))
            events.append((STALLED, dict(payload, stalled=True, reason=reason)))
        elif current.stalled and not stuck and phase != DAEMON_DOWN:
            current.stalled = False
            events.append((STALLED, dict(payload, stalled=False, reason="progressing again")))
        if phase == IN_SYNC and (previous is None or previous.phase != IN_SYNC):
            events.append((SYNCED, payload))
        elif phase in MOVING and (previous is None or (previous.phase, previous.percent) !=
                                  (phase, percent)):
            events.append((PROGRESS, payload))
        return events
