"""Waits that finish as soon as a sensor saw the event, and still finish by bounded polling
when no sensor runs. A sensor writes a datastore key when it sees the event; the waiting action
reads that key every second (no load on Ceph or OpenStack) and runs its own, authoritative
check at once when the key appears, otherwise every poll interval."""
import json
import time
from typing import Callable, Optional

Reader = Callable[[str], Optional[str]]
Writer = Callable[[str, str], None]


def synced_key(pool: str, image: str) -> str:
    return "ceph_migrate.mirror_synced.%s.%s" % (pool, image)


def image_active_key(image_id: str) -> str:
    return "ceph_migrate.image_active.%s" % image_id


def event_value() -> str:
    """What a sensor writes under such a key."""
    return json.dumps({"at": time.time()})


class Nudge:
    """A sleep between two checks that ends early, once, when the key is written after the
    wait began. Without a reader (no datastore) it is a plain sleep."""

    def __init__(self, read: Optional[Reader], key: str, tick: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.read, self.key, self.tick = read, key, tick
        self.since = clock()
        self.fired = False

    def seen(self) -> bool:
        if self.read is None or self.fired:
            return False
        try:
            raw = self.read(self.key)
            seen = raw is not None and raw != "" and \
                float(json.loads(raw).get("at", 0)) >= self.since - 1
        except Exception:            # a datastore hiccup never fails a wait: poll instead
            return False
        self.fired = seen
        return seen

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.seen():
                return
            time.sleep(min(self.tick, left))


def datastore_reader(service: object) -> Optional[Reader]:
    """Read global datastore keys through an action's or sensor's service (None outside
    StackStorm)."""
    get = getattr(service, "get_value", None)
    if get is None:
        return None
    return lambda key: get(key, local=False)


def datastore_writer(service: object, encrypt: bool = False) -> Optional[Writer]:
    """Write global datastore keys, ENCRYPTed (a secret) when asked (None where the service
    keeps none)."""
    put = getattr(service, "set_value", None)
    if put is None:
        return None
    if encrypt:
        return lambda key, value: put(key, value, local=False, encrypt=True)
    return lambda key, value: put(key, value, local=False)
