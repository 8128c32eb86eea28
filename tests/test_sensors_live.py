"""The sensors against the real world: the rbd-mirror sensor on the real Ceph pair (a real
sync seen through to in sync, a stopped rbd-mirror daemon seen as a stall and its return), the
notification sensor on the real RabbitMQ with the real Glance and Cinder publishing (an
upload, a manage, a broker restart under the running sensor, the polling fallback while its
broker is unreachable). Every dispatch is checked against its trigger's payload schema by the
sensor service double."""
import subprocess
import sys
import threading
import time
import uuid

import pytest

from ceph_env import REPO, SANDBOX, create_volume, purge_image, run_action, write_random
from lib.notifications import SOURCE_ID_KEY
from lib.settings import SOURCE
from openstack_env import (OS_SANDBOX, create_source_volume, delete_quietly, forget_migration,
                           wait_gone)
from runner.actions import parameters
from st2_support import action_metadata, get_action_instance, get_sensor_instance
from st2_doubles.st2_services import ActionServiceDouble


def until(what, check, timeout, every=0.5):
    """CHECK's first truthy value, or fail after TIMEOUT seconds saying WHAT was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "no %s within %ss" % (what, timeout)
        time.sleep(every)


def dispatched(sensor, trigger, **match):
    return [p for p in sensor.sensor_service.payloads("ceph_migrate." + trigger)
            if all(p.get(k) == v for k, v in match.items())]


def sandbox(script, *args):
    run = subprocess.run([sys.executable, str(script)] + list(args), capture_output=True,
                         text=True, timeout=300, cwd=str(REPO))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


# -- rbd-mirror -----------------------------------------------------------------------------
def mirror_sensor(config, stall_seconds=300):
    sensor = get_sensor_instance("mirror_sensor", config=dict(
        config, sensors={"mirror_poll_interval": 1, "stall_seconds": stall_seconds}))
    sensor.setup()
    return sensor


def test_a_real_sync_is_followed_to_in_sync_and_ends_a_waiting_wait(settings, ceph_config):
    """Journal mode, 1 GiB: the sensor sees the image before it is in sync, then in sync once.
    rbd-mirror writes its status only every ~30 s or on a state change, so whether a replay
    phase shows in between is rbd-mirror's choice (the unit tests cover progress on recorded
    statuses); any progress it reports must come before the synced event. A wait_for_sync whose
    own checks run only every 9.5 minutes returns as soon as the sensor saw the replica in sync
    (its datastore key), long before its next check."""
    config = dict(ceph_config, mirror_mode="journal",
                  sync={"poll_interval": 570, "wait_timeout": 540})
    image = "volume-" + create_volume(settings, 1024)
    sensor = mirror_sensor(config)
    waiter = ActionServiceDouble("ceph_migrate", "WaitForSync")
    waiter._datastore_service = sensor.sensor_service._datastore_service   # one datastore
    action = get_action_instance("wait_for_sync", config=config, action_service=waiter)
    outcome = {}
    try:
        assert run_action("enable_mirroring", config, image=image).ok
        sensor.poll()                     # right away: the 1 GiB replica cannot be there yet
        assert not dispatched(sensor, "mirror_synced", image=image)
        thread = threading.Thread(target=lambda: outcome.update(result=action.run(
            **parameters(action_metadata("wait_for_sync"), {"image": image}))), daemon=True)
        thread.start()

        def synced():
            sensor.poll()
            return dispatched(sensor, "mirror_synced", image=image)
        payload = until("mirror_synced", synced, 240)[0]
        assert payload["volume_id"] == image[len("volume-"):] and payload["mode"] == "journal"
        assert payload["percent"] == 100.0 and payload["pool"] == settings.pools.mirrored_cinder
        events = [d["trigger"] for d in sensor.sensor_service.dispatched_triggers
                  if d["payload"]["image"] == image]
        assert events[-1] == "ceph_migrate.mirror_synced"
        assert set(events[:-1]) <= {"ceph_migrate.mirror_progress"}
        assert all(p["phase"] in ("bootstrapping", "syncing", "replaying")
                   for p in dispatched(sensor, "mirror_progress", image=image))
        thread.join(timeout=120)
        assert not thread.is_alive(), "the wait did not notice the sensor's event"
        ok, result = outcome["result"]
        assert ok and result["in_sync"] and result["waited_seconds"] < 300
        sensor.poll()
        assert len(dispatched(sensor, "mirror_synced", image=image)) == 1     # once
    finally:
        run_action("disable_mirroring", config, image=image, discard_replica=True)
        purge_image(settings, SOURCE, settings.pools.mirrored_cinder, image)


def test_a_stopped_rbd_mirror_is_a_stall_that_clears_when_it_is_back(settings, ceph_config):
    config = dict(ceph_config, mirror_mode="journal")
    image = "volume-" + create_volume(settings, 64)
    sensor = mirror_sensor(config)
    stopped = False
    try:
        assert run_action("enable_mirroring", config, image=image).ok
        assert run_action("wait_for_sync", config, image=image).ok
        sensor.poll()
        sandbox(SANDBOX, "stop-mirror")
        stopped = True
        # writes while rbd-mirror is down: a bounded wait says it timed out (what the
        # workflows retry on), never that the replica is in sync
        write_random(settings, SOURCE, "%s/%s" % (settings.pools.mirrored_cinder, image), 4)
        waited = run_action("wait_for_sync", config, image=image, timeout_seconds=5)
        assert not waited.ok and waited.result.get("timed_out") is True, waited.result

        def stalled(flag):
            def check():
                sensor.poll()
                return dispatched(sensor, "mirror_stalled", image=image, stalled=flag)
            return check
        payload = until("mirror_stalled", stalled(True), 120)[0]
        assert payload["reason"] == "rbd-mirror daemon is down"
        sandbox(SANDBOX, "start-mirror")
        stopped = False
        until("the stall's end", stalled(False), 180)
        assert len(dispatched(sensor, "mirror_stalled", image=image, stalled=True)) == 1
        # rbd-mirror back: the same wait, re-run, finishes (the replica catches up)
        assert run_action("wait_for_sync", config, image=image, timeout_seconds=300).ok
    finally:
        if stopped:
            sandbox(SANDBOX, "start-mirror")
        run_action("disable_mirroring", config, image=image, discard_replica=True)
        purge_image(settings, SOURCE, settings.pools.mirrored_cinder, image)


# -- OpenStack notifications ------------------------------------------------------------------
class Running:
    """A notification sensor running in a thread, as the sensor container runs it."""

    def __init__(self, config):
        self.sensor = get_sensor_instance("notification_sensor", config=dict(
            config, sensors={"fallback_poll_interval": 1, "max_backoff": 2}))
        self.sensor.setup()
        self.thread = threading.Thread(target=self.sensor.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.sensor

    def __exit__(self, *exc):
        self.sensor.cleanup()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the sensor did not stop"


def test_upload_manage_and_a_broker_restart_reach_the_triggers(settings, full_config, clouds):
    boot = create_source_volume(clouds, settings, fill_mib=16, bootable=True)
    data = create_source_volume(clouds, settings, fill_mib=16)
    image_id = None
    try:
        with Running(full_config) as sensor:
            listeners = {x.name: x for x in sensor._listeners}
            until("both listeners up", lambda: all(x.up for x in listeners.values()), 30)
            uploaded = run_action("upload_volume_to_image", full_config, volume_id=boot.id)
            assert uploaded.ok, uploaded.result
            image_id = uploaded.result["image_id"]
            active = until("image_status active", lambda: dispatched(
                sensor, "image_status", image_id=image_id, status="active"), 60)[0]
            assert active["cloud"] == "source" and active["source_id"] == boot.id
            assert active["event_type"] in ("image.activate", "image.update")

            image = "volume-" + data.id
            for step in ("enable_mirroring", "wait_for_sync", "copy_replica", "verify_copy"):
                assert run_action(step, full_config, image=image).ok
            managed = run_action("manage_volume", full_config, volume_id=data.id)
            assert managed.ok, managed.result
            volume = until("volume_status of the manage", lambda: dispatched(
                sensor, "volume_status", event_type="volume.manage_existing.end"), 60)[0]
            assert volume["volume_id"] == managed.result["volume_id"]
            assert (volume["status"], volume["cloud"], volume["source_id"]) == \
                ("available", "destination", data.id)

            sandbox(OS_SANDBOX, "restart-broker")
            until("both listeners back", lambda: all(
                x.up and x.reconnects >= 1 for x in listeners.values()), 90)
            clouds["pa1-admin"].image.delete_image(image_id)
            deleted = until("image_status after the restart", lambda: dispatched(
                sensor, "image_status", image_id=image_id, status="deleted"), 90)[0]
            assert deleted["event_type"] in ("image.delete", "poll")
            image_id = None
            assert all(not x.dropped for x in listeners.values())
    finally:
        if image_id:
            delete_quietly(clouds["pa1-admin"], "image", image_id)
        forget_migration(settings, full_config, clouds, data.id)
        delete_quietly(clouds["pa1-admin"], "volume", boot.id)


def test_the_apis_are_polled_while_the_broker_is_unreachable(full_config, clouds):
    """The sensor's brokers point at a closed loopback port: no notification can arrive, yet a
    marked volume's creation and deletion are reported (event_type poll)."""
    unreachable = dict(full_config)
    for role in ("source", "destination"):
        unreachable["%s_notifications" % role] = dict(full_config["%s_notifications" % role],
                                                      port=9)
    marker = str(uuid.uuid4())
    tenant = clouds["ct1-tenant"]
    volume = None
    try:
        with Running(unreachable) as sensor:
            assert not any(x.up for x in sensor._listeners)
            volume = tenant.block_storage.create_volume(
                name="fallback-%s" % marker[:8], size=1, metadata={SOURCE_ID_KEY: marker})
            seen = until("a polled volume_status", lambda: dispatched(
                sensor, "volume_status", source_id=marker, status="available"), 120)[0]
            assert seen["event_type"] == "poll" and seen["volume_id"] == volume.id
            tenant.block_storage.delete_volume(volume.id)
            wait_gone(clouds["ct1-admin"], volume.id)
            until("a polled deletion", lambda: dispatched(
                sensor, "volume_status", source_id=marker, status="deleted"), 60)
            volume = None
            assert all(x.failures >= 1 for x in sensor._listeners)
    finally:
        if volume is not None:
            delete_quietly(clouds["ct1-admin"], "volume", volume.id)


@pytest.fixture(autouse=True)
def _no_leftover_threads():
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()
                and not t.daemon]
    assert not leftover, leftover
