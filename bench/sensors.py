#!/usr/bin/env python3
"""Benchmark (not a test) of the two sensors on the running sandboxes.

  latency: the notification sensor (the pack's real class, in a thread, on the sandbox broker)
           while Glance publishes N real image.update notifications (property changes of a
           marked image at ct1); for each, the time from the notification's own timestamp (set
           when Glance published it) to the sensor's dispatch. Prints p50, p90, p99, max.
  poll:    the rbd-mirror sensor's cost per poll with 1, 10 and 50 mirrored images: rbd calls
           and seconds per poll (median of --repeat), next to what one status call per image
           would cost.

  .venv/bin/python bench/sensors.py latency [--events 120]
  .venv/bin/python bench/sensors.py poll [--repeat 5]
"""
import argparse
import importlib.util
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "actions")]

from sandbox.pack_config import local_config  # noqa: E402
from st2_support import SensorServiceDouble  # noqa: E402  (puts StackStorm's stand-ins on sys.path)

from lib.ceph_cli import CephCli  # noqa: E402
from lib.notifications import SOURCE_ID_KEY, decode  # noqa: E402
from lib.settings import DESTINATION, SOURCE, Settings  # noqa: E402


def sensor(name: str, cls: str, config: dict, **kwargs):
    spec = importlib.util.spec_from_file_location(name, str(REPO / "sensors" / (name + ".py")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    service = SensorServiceDouble("ceph_migrate", cls, pack_dir=str(REPO))
    return getattr(module, cls)(sensor_service=service, config=config, **kwargs)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def latency(args) -> int:
    import openstack.config

    config = local_config()
    if "destination_notifications" not in config:
        sys.exit("the OpenStack sandbox is not up")
    clouds = openstack.config.OpenStackConfig(config_files=[config["source_cloud"]
                                                            ["clouds_yaml"]])
    admin = openstack.connection.Connection(config=clouds.get_one(cloud="ct1-admin"))
    marker = str(uuid.uuid4())
    image = admin.image.create_image(name="bench-%s" % marker[:8], disk_format="raw",
                                     container_format="bare", **{SOURCE_ID_KEY: marker})
    instance = sensor("notification_sensor", "NotificationSensor",
                      dict(config, sensors={"fallback_poll_interval": 60}))
    instance.setup()
    delays = []
    on_body = instance._on_body

    def timed(role, body):
        message = decode(body)
        on_body(role, body)                               # decode, match, dispatch
        if message["event_type"] == "image.update" and \
                (message.get("payload") or {}).get("id") == image.id:
            published = datetime.strptime(message["timestamp"], "%Y-%m-%d %H:%M:%S.%f")
            published = published.replace(tzinfo=timezone.utc).timestamp()
            delays.append(time.time() - published)
    instance._on_body = timed
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not all(x.up for x in instance._listeners) and time.monotonic() < deadline:
            time.sleep(0.2)
        started = time.monotonic()
        for number in range(args.events):
            admin.image.update_image(image.id, bench_counter=str(number))
            time.sleep(args.gap)
        deadline = time.monotonic() + 60
        while len(delays) < args.events and time.monotonic() < deadline:
            time.sleep(0.2)
        took = time.monotonic() - started
    finally:
        instance.cleanup()
        thread.join(timeout=30)
        admin.image.delete_image(image.id, ignore_missing=True)
    if len(delays) < args.events:
        print("only %d of %d events arrived" % (len(delays), args.events))
        return 1
    ms = [d * 1000 for d in delays]
    print("notification -> dispatch, %d real Glance image.update events in %.1fs:"
          % (len(ms), took))
    print("  p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   max %.1f ms   mean %.1f ms"
          % (percentile(ms, .5), percentile(ms, .9), percentile(ms, .99), max(ms),
             statistics.mean(ms)))
    return 0


class Counting:
    """Counts the rbd invocations of every CephCli (all of them go through run_text)."""

    def __init__(self):
        self.calls = 0
        self.original = CephCli.run_text

    def __enter__(self):
        counter = self

        def run_text(cli, *a, **k):
            counter.calls += 1
            return counter.original(cli, *a, **k)
        CephCli.run_text = run_text
        return self

    def __exit__(self, *exc):
        CephCli.run_text = self.original


def poll(args) -> int:
    config = local_config()
    settings = Settings.from_config(config)
    pool = settings.pools.mirrored_cinder
    source, dest = settings.rbd(SOURCE), settings.rbd(DESTINATION)
    images = []
    instance = sensor("mirror_sensor", "MirrorSensor", config, poll_interval=10)
    instance.setup()
    rows = []
    try:
        for count in (1, 10, 50):
            while len(images) < count:
                name = "bench-poll-%s" % uuid.uuid4().hex[:12]
                source.run_text("create", "%s/%s" % (pool, name), "--size", "4M")
                source.run_text("mirror", "image", "enable", "%s/%s" % (pool, name), "snapshot")
                images.append(name)
            deadline = time.monotonic() + 300     # every image known to rbd-mirror
            while time.monotonic() < deadline:
                seen = {i["name"] for i in (dest.run("mirror", "pool", "status", "--verbose",
                                                     pool) or {}).get("images", [])
                        if i.get("description") != "status not found"}
                if set(images) <= seen:
                    break
                time.sleep(2)
            sensor_s, per_image_s = [], []
            with Counting() as counter:
                for _ in range(args.repeat):
                    started = time.monotonic()
                    instance.poll()
                    sensor_s.append(time.monotonic() - started)
                calls = counter.calls / args.repeat
            for _ in range(args.repeat):
                started = time.monotonic()
                for name in images:
                    dest.run("mirror", "image", "status", "%s/%s" % (pool, name))
                per_image_s.append(time.monotonic() - started)
            rows.append((count, calls, statistics.median(sensor_s),
                         statistics.median(per_image_s)))
    finally:
        for name in images:
            spec = "%s/%s" % (pool, name)
            for argv in (("mirror", "image", "disable", "--force", spec),
                         ("rm", "--no-progress", spec)):
                try:
                    source.run_text(*argv)
                except Exception:
                    pass
    print("rbd-mirror sensor, cost of one poll (2 pools, median of %d):" % args.repeat)
    print("  %-8s %-14s %-14s %-22s %s"
          % ("images", "rbd calls", "seconds", "1 call per image (s)", "ratio"))
    for count, calls, seconds, per_image in rows:
        print("  %-8d %-14.0f %-14.3f %-22.3f %.1fx"
              % (count, calls, seconds, per_image, per_image / seconds))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--events", type=int, default=120)
    lat.add_argument("--gap", type=float, default=0.05, help="seconds between two updates")
    pol = sub.add_parser("poll")
    pol.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    return latency(args) if args.what == "latency" else poll(args)


if __name__ == "__main__":
    sys.exit(main())
