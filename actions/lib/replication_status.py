"""A model of ``rbd mirror image status --format json`` for journal and snapshot modes.

rbd-mirror refreshes this status only every ~30 s, so it is good for progress, rates and errors,
but never the last word on "in sync": see ``sync_check`` for the live checks.
"""
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Optional, Tuple

NOT_FOUND = "status not found"
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")

# phases, in the order a healthy replication goes through them
WAITING = "waiting"            # rbd-mirror has not reported on the image yet
BOOTSTRAPPING = "bootstrapping"  # initial full copy (journal mode) or first snapshot sync
SYNCING = "syncing"            # snapshot mode: copying the delta of a mirror snapshot
REPLAYING = "replaying"        # caught up as far as this (possibly stale) status knows... or not
IN_SYNC = "in_sync"            # the status says the replica has everything it has seen
STOPPED = "stopped"            # replay stopped (e.g. the replica was promoted)
NOT_PRIMARY = "remote_not_primary"  # the source was demoted: planned failover in progress
ERROR = "error"
DAEMON_DOWN = "daemon_down"


@dataclass(frozen=True)
class MirrorStatus:
    name: str
    global_id: str
    state: str
    description: str
    last_update: Optional[float]          # epoch seconds, None when never reported
    details: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "MirrorStatus":
        description = str(data.get("description") or "")
        return cls(name=str(data.get("name", "")), global_id=str(data.get("global_id", "")),
                   state=str(data.get("state", "")), description=description,
                   last_update=_parse_time(data.get("last_update")),
                   details=_parse_details(description))

    @classmethod
    def from_text(cls, text: str) -> "MirrorStatus":
        return cls.from_json(json.loads(text))

    @property
    def daemon_up(self) -> bool:
        return self.state.startswith("up+")

    @property
    def mode(self) -> str:
        if "replay_state" in self.details or "remote_snapshot_timestamp" in self.details:
            return "snapshot"
        if "entries_behind_primary" in self.details or "primary_position" in self.details:
            return "journal"
        return "unknown"

    @property
    def phase(self) -> str:
        state, desc = self.state, self.description
        if state.endswith("+error"):
            return ERROR
        if desc == NOT_FOUND:
            return WAITING
        if not self.daemon_up:
            return DAEMON_DOWN
        if "remote image is not primary" in desc or "remote image demoted" in desc:
            return NOT_PRIMARY
        if state.endswith("+stopped"):
            return STOPPED
        if state.endswith("+syncing") or desc.startswith("bootstrapping"):
            return BOOTSTRAPPING
        if state.endswith("+replaying"):
            if self.mode == "snapshot" and self.details.get("replay_state") == "syncing":
                return BOOTSTRAPPING if not self.details.get("local_snapshot_timestamp") \
                    else SYNCING
            return IN_SYNC if self.reports_in_sync else REPLAYING
        return state.split("+", 1)[-1] or WAITING

    @property
    def reports_in_sync(self) -> bool:
        """What the status claims (possibly ~30 s old): the replica has all it has seen."""
        d = self.details
        if not self.state.endswith("+replaying"):
            return False
        if self.mode == "snapshot":
            local = d.get("local_snapshot_timestamp") or 0
            return (d.get("replay_state") == "idle" and bool(local)
                    and local == d.get("remote_snapshot_timestamp"))
        if self.mode == "journal":
            return (d.get("entries_behind_primary") == 0
                    and bool(d.get("primary_position"))
                    and d.get("primary_position") == d.get("non_primary_position"))
        return False

    @property
    def percent(self) -> Optional[float]:
        """Progress of the current copy (0-100), when the status tells it."""
        phase = self.phase
        if phase == IN_SYNC:
            return 100.0
        if "syncing_percent" in self.details:
            return float(self.details["syncing_percent"])
        match = _PERCENT.search(self.description)
        return float(match.group(1)) if match else None

    @property
    def bytes_per_second(self) -> Optional[float]:
        value = self.details.get("bytes_per_second")
        return float(value) if value is not None else None

    @property
    def eta_seconds(self) -> Optional[float]:
        if self.phase == IN_SYNC:
            return 0.0
        value = self.details.get("seconds_until_synced")
        return float(value) if value is not None else None

    @property
    def entries_behind(self) -> Optional[int]:
        value = self.details.get("entries_behind_primary")
        return int(value) if value is not None else None

    @property
    def is_error(self) -> bool:
        return self.phase == ERROR

    def is_fresh(self, since: float) -> bool:
        """True when rbd-mirror wrote this status at or after ``since`` (epoch seconds)."""
        return self.last_update is not None and self.last_update >= int(since)

    def progress_key(self) -> Tuple[Any, ...]:
        """Changes whenever replication makes progress: compare two polls to detect a stall."""
        d = self.details
        return (self.phase, d.get("non_primary_position"), d.get("local_snapshot_timestamp"),
                d.get("syncing_percent"), d.get("last_copied_object_number"),
                _PERCENT.findall(self.description))

    def as_dict(self) -> Dict[str, Any]:
        return {
            "image": self.name, "global_id": self.global_id, "state": self.state,
            "phase": self.phase, "mode": self.mode, "description": self.description,
            "reports_in_sync": self.reports_in_sync, "percent": self.percent,
            "bytes_per_second": self.bytes_per_second, "eta_seconds": self.eta_seconds,
            "entries_behind": self.entries_behind,
            "last_update": (datetime.utcfromtimestamp(self.last_update).isoformat() + "Z"
                            if self.last_update is not None else None),
        }


def _parse_details(description: str) -> Dict[str, Any]:
    """``replaying, {json}`` carries the numbers; other descriptions carry none."""
    _, sep, rest = description.partition(", ")
    if sep and rest.startswith("{"):
        try:
            parsed = json.loads(rest)
            return parsed if isinstance(parsed, dict) else {}
        except ValueError:
            return {}
    return {}


def _parse_time(value: Any) -> Optional[float]:
    """rbd prints ``YYYY-MM-DD HH:MM:SS`` in the cluster host's local time."""
    if not value:
        return None
    try:
        return time.mktime(time.strptime(str(value), "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return None
