"""Watches rbd-mirror for the images under migration and dispatches progress, in-sync, stalled
and error triggers, each once per change. Cheap: one pool-status call per pool per poll."""
import os
import sys

from st2reactor.sensor.base import PollingSensor

_ACTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "actions")
if _ACTIONS not in sys.path:     # the core lives with the actions (actions/lib)
    sys.path.insert(0, _ACTIONS)

from lib.errors import CephMigrateError  # noqa: E402
from lib.mirror_watch import SYNCED, MirrorWatch, pool_statuses  # noqa: E402
from lib.settings import DESTINATION, Settings  # noqa: E402
from lib.waiting import event_value, synced_key  # noqa: E402


class MirrorSensor(PollingSensor):
    def __init__(self, sensor_service, config=None, poll_interval=10):
        super(MirrorSensor, self).__init__(sensor_service=sensor_service, config=config,
                                           poll_interval=poll_interval)
        self._log = sensor_service.get_logger(name=self.__class__.__name__)
        self._settings = None
        self._watch = None

    def setup(self):
        self._settings = Settings.from_config(self.config)
        self.set_poll_interval(self._settings.sensors.mirror_poll_interval)
        self._watch = MirrorWatch(stall_seconds=self._settings.sensors.stall_seconds)

    def poll(self):
        cli = self._settings.rbd(DESTINATION)
        pools = self._settings.pools
        for pool in (pools.mirrored_cinder, pools.mirrored_glance):
            try:
                statuses = pool_statuses(cli, pool)
            except CephMigrateError as exc:
                self._log.warning("mirror status of pool %s: %s", pool, exc)
                continue
            for trigger, payload in self._watch.update(pool, statuses):
                self.sensor_service.dispatch(trigger="ceph_migrate." + trigger, payload=payload)
                if trigger == SYNCED:   # what a waiting wait_for_sync looks for
                    self.sensor_service.set_value(
                        synced_key(pool, payload["image"]), event_value(),
                        ttl=86400, local=False)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
