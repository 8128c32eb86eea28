"""Waits that a sensor's event ends early: the datastore key is read every tick, a key older
than the wait is ignored, a datastore failure falls back to plain polling."""
import json
import threading
import time

from lib.waiting import Nudge, datastore_reader, event_value, synced_key


def test_a_key_written_during_the_wait_ends_the_sleep_once():
    store = {}
    nudge = Nudge(store.get, synced_key("oscinder", "volume-x"), tick=0.05)
    timer = threading.Timer(0.3, lambda: store.update({nudge.key: event_value()}))
    timer.start()
    nudge.sleep(30)                   # would take 30 s if the key were not noticed
    timer.join()
    assert nudge.fired
    started = time.monotonic()
    nudge.sleep(0.2)                  # fired already: a plain sleep now
    assert time.monotonic() - started >= 0.2


def test_an_old_key_does_not_end_a_new_wait():
    old = json.dumps({"at": time.time() - 3600})
    nudge = Nudge({"k": old}.get, "k", tick=0.05)
    nudge.sleep(0.2)
    assert not nudge.fired


def test_a_failing_datastore_is_a_plain_sleep():
    def broken(key):
        raise RuntimeError("datastore down")
    nudge = Nudge(broken, "k", tick=0.05)
    nudge.sleep(0.1)
    assert not nudge.fired and not Nudge(None, "k").seen()


def test_the_reader_uses_global_keys():
    asked = []

    class Service:
        def get_value(self, name, local=True):
            asked.append((name, local))
            return None
    assert datastore_reader(Service())("k") is None and asked == [("k", False)]
    assert datastore_reader(object()) is None
