"""Stand-in for ``st2reactor.sensor.base``: the sensor base classes of StackStorm 3.8/3.9.

Same constructors and abstract methods, so the loader check (every abstract method implemented)
and instantiation behave as in the sensor container.
"""
import abc
import time

__all__ = ["Sensor", "PollingSensor"]


class BaseSensor(metaclass=abc.ABCMeta):
    """Common part of passive and polling sensors; not instantiated directly."""

    def __init__(self, sensor_service, config=None):
        self._sensor_service = sensor_service
        self.sensor_service = sensor_service
        self._config = config or {}
        self.config = self._config

    @abc.abstractmethod
    def setup(self):
        """Called once before run()."""

    @abc.abstractmethod
    def run(self):
        """Main loop of the sensor."""

    @abc.abstractmethod
    def cleanup(self):
        """Called when the sensor container stops the sensor."""

    @abc.abstractmethod
    def add_trigger(self, trigger):
        """Called when a trigger of this sensor's trigger types is created."""

    @abc.abstractmethod
    def update_trigger(self, trigger):
        """Called when such a trigger is updated."""

    @abc.abstractmethod
    def remove_trigger(self, trigger):
        """Called when such a trigger is deleted."""


class Sensor(BaseSensor):
    """Base class of passive sensors (they block in run() and dispatch as events arrive)."""

    @abc.abstractmethod
    def run(self):
        """Main loop of the sensor."""


class PollingSensor(BaseSensor):
    """Base class of active sensors: run() calls poll() every poll interval, forever."""

    def __init__(self, sensor_service, config=None, poll_interval=5):
        super().__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abc.abstractmethod
    def poll(self):
        """Look at the outside world once and dispatch what changed."""

    def run(self):
        while True:
            self.poll()
            time.sleep(self._poll_interval)

    def get_poll_interval(self):
        return self._poll_interval

    def set_poll_interval(self, poll_interval):
        self._poll_interval = poll_interval
