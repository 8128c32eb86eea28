"""Listens to each configured cloud's notifications (RabbitMQ, oslo.messaging v2) and
dispatches image_status / volume_status for the resources under migration. Never crashes on a
broker outage: it reconnects with backoff and meanwhile polls Cinder and Glance, so no status
change is missed."""
import os
import sys
import threading
import time

from st2reactor.sensor.base import Sensor

_ACTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "actions")
if _ACTIONS not in sys.path:     # the core lives with the actions (actions/lib)
    sys.path.insert(0, _ACTIONS)

from lib.broker import Listener  # noqa: E402
from lib.notifications import (IMAGE_STATUS, StatusBook, decode, poll_marked,  # noqa: E402
                               to_trigger)
from lib.settings import Settings  # noqa: E402
from lib.waiting import event_value, image_active_key  # noqa: E402


class NotificationSensor(Sensor):
    def __init__(self, sensor_service, config=None):
        super(NotificationSensor, self).__init__(sensor_service=sensor_service, config=config)
        self._log = sensor_service.get_logger(name=self.__class__.__name__)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listeners = []
        self._book = StatusBook()
        self._settings = None
        self._last_poll = {}

    def setup(self):
        self._settings = Settings.from_config(self.config)
        for role, broker in sorted(self._settings.notifications.items()):
            self._listeners.append(Listener(
                role, broker,
                lambda body, role=role: self._on_body(role, body),
                max_backoff=self._settings.sensors.max_backoff, log=self._log))
        if not self._listeners:
            self._log.warning("no source_notifications/destination_notifications configured: "
                              "nothing to listen to")
        for listener in self._listeners:      # what the fallback compares its polls with
            self._book.baseline(self._poll(listener.name) or [])

    def run(self):
        """One thread per cloud (green threads in StackStorm's sensor container), so one
        cloud's broker never delays the other's events; returns when cleanup() is called."""
        threads = [threading.Thread(target=self._listen, args=(listener,), daemon=True,
                                    name="notifications-%s" % listener.name)
                   for listener in self._listeners]
        for thread in threads:
            thread.start()
        self._stop.wait()
        for thread in threads:
            thread.join(timeout=10)

    def _listen(self, listener):
        try:
            while not self._stop.is_set():
                listener.step(1.0)
                if not listener.up:
                    self._fallback(listener.name)
        finally:                       # pika connections belong to the thread that uses them
            listener.close()

    def cleanup(self):
        self._stop.set()          # each listener thread closes its connection and ends

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

    # -- internals ---------------------------------------------------------------------------
    def _on_body(self, role, body):
        """One AMQP message: a malformed one raises ValueError (dropped by the listener)."""
        found = to_trigger(role, decode(body))
        if found is not None:
            self._dispatch(*found)

    def _dispatch(self, trigger, payload):
        self.sensor_service.dispatch(trigger="ceph_migrate." + trigger, payload=payload)
        with self._lock:
            self._book.saw(trigger, payload)
        if trigger == IMAGE_STATUS and payload.get("status") == "active":
            self.sensor_service.set_value(image_active_key(payload["image_id"]), event_value(),
                                          ttl=86400, local=False)

    def _fallback(self, role):
        """Broker unreachable: poll the cloud's APIs (bounded by fallback_poll_interval)."""
        now = time.monotonic()
        if now - self._last_poll.get(role, 0.0) < self._settings.sensors.fallback_poll_interval:
            return
        self._last_poll[role] = now
        polled = self._poll(role)
        if polled is None:            # a failed poll says nothing about what is gone
            return
        with self._lock:
            changes = self._book.changes(role, polled)
        for trigger, payload in changes:
            self._dispatch(trigger, payload)

    def _poll(self, role):
        try:
            return poll_marked(role, self._settings.cloud(role).connect())
        except Exception as exc:     # the API may be down too: try again next time
            self._log.warning("%s: polling the APIs failed: %s", role, exc)
            return None
