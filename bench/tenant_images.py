#!/usr/bin/env python3
"""Benchmark (not a test): a tenant's image carried to the destination cloud the pack's way
against OS Migrate's way and the raw pipe.

On the sandbox clouds, a raw image of --size-mib MiB of random data in a new pa1 project:
  A. the pack: import_tenant (kinds project and image) into a project it makes at ct1:
     rbd-mirror (journal, the Glance pool) to the destination cluster, the copy into the
     destination Glance pool, its snapshot, the content check, mirroring off, the registration
     by rbd:// location; rolled back after each run;
  B. OS Migrate's way: the bytes through both Glance APIs, downloaded from pa1 and uploaded to
     ct1 (streamed here, which is kinder than OS Migrate's file on the migration host);
  C. the raw rbd export (ceph) | rbd import (cephpa1) of the image's data.
Interleaved A, B, C, repeated; medians and ratios printed.

  .venv/bin/python bench/tenant_images.py [--size-mib 512] [--repeat 3]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions"), str(REPO / "sandbox"), str(REPO / "bench")]

from sandbox.pack_config import local_config  # noqa: E402
from lib.settings import DESTINATION, SOURCE, Settings  # noqa: E402
from lib.tenant import TenantMap  # noqa: E402
from lib.tenant_infra import export_tenant, import_tenant, rollback_tenant  # noqa: E402
from copy_throughput import raw_pipe, remove  # noqa: E402


class Stream:
    """A download's chunks as the file object an upload reads."""

    def __init__(self, chunks):
        self.chunks, self.left = chunks, b""

    def read(self, size=-1):
        while size < 0 or len(self.left) < size:
            try:
                self.left += next(self.chunks)
            except StopIteration:
                break
        out, self.left = (self.left, b"") if size < 0 else (self.left[:size], self.left[size:])
        return out


def through_glance(source, destination, image) -> float:
    started = time.monotonic()
    chunks = source.image.download_image(image, stream=True).iter_content(8 << 20)
    copy = destination.image.create_image(name="osm-%s" % image.id[:8], disk_format="raw",
                                          container_format="bare", data=Stream(chunks),
                                          validate_checksum=False)
    seconds = time.monotonic() - started
    destination.image.delete_image(copy, ignore_missing=True)
    return seconds


def by_ceph(settings, doc) -> float:
    tmap = TenantMap()
    started = time.monotonic()
    done = import_tenant(settings, doc, None, tmap, kinds=("project", "image"))
    seconds = time.monotonic() - started
    if done["summary"]["conflict"]:
        sys.exit("the import had conflicts:\n" + done["text"])
    rollback_tenant(settings, tmap)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib << 20
    settings = Settings.from_config(local_config())
    source, destination = settings.cloud(SOURCE).connect(), settings.cloud(DESTINATION).connect()
    ids = source.identity
    project = ids.create_project(name="bench-img-%s" % uuid.uuid4().hex[:6],
                                 domain_id=ids.find_domain("Default").id)
    image = None
    times = {"A": [], "B": [], "C": []}
    try:
        with tempfile.TemporaryFile() as data:
            for _ in range(args.size_mib):
                data.write(os.urandom(1 << 20))
            data.seek(0)
            print("uploading %d MiB of random data to pa1's Glance ..." % args.size_mib,
                  flush=True)
            image = source.image.create_image(name="bench", data=data, disk_format="raw",
                                              container_format="bare", owner=project.id,
                                              validate_checksum=False)
        doc = export_tenant(settings, project.id)["document"]
        spec = "%s/%s@snap" % (settings.pools.mirrored_glance, image.id)
        raw_spec = "%s/bench-raw-%s" % (settings.pools.destination_glance, image.id[:8])
        for round_ in range(args.repeat):
            print("round %d ..." % (round_ + 1), flush=True)
            times["A"].append(by_ceph(settings, doc))
            times["B"].append(through_glance(source, destination, image))
            times["C"].append(raw_pipe(settings.rbd(SOURCE), settings.rbd(DESTINATION), spec,
                                       raw_spec))
            remove(settings.rbd(DESTINATION), raw_spec)
    finally:
        if image is not None:
            source.image.delete_image(image, ignore_missing=True)
        ids.delete_project(project, ignore_missing=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    labels = {"A": "the pack (Ceph: mirror, copy, check, registration)",
              "B": "through both Glance APIs (OS Migrate's way)",
              "C": "raw rbd export | rbd import"}
    print("\n%d MiB image, median of %d runs:" % (args.size_mib, args.repeat))
    for key in "ABC":
        rate = size / 1e6 / medians[key]
        print("  %s %-52s %6.1f s  %6.1f MB/s" % (key, labels[key], medians[key], rate))
    print("  ratios: A/B %.2f, A/C %.2f, B/C %.2f" % (
        medians["A"] / medians["B"], medians["A"] / medians["C"], medians["B"] / medians["C"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
