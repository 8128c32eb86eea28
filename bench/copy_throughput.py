#!/usr/bin/env python3
"""Benchmark (not a test): the pack's copy step against a raw cross-cluster rbd pipe.

On the sandbox, for one image of random data (default 1 GiB) mirrored ceph -> cephpa1:
  A. the pack's copy step: copy_replica(replica -> destination Cinder pool), rbd cp with explicit
     features inside the destination cluster;
  B. the raw way without rbd-mirror: rbd export (ceph) | rbd import (cephpa1);
  C. (journal mode reference) plain rbd cp of a journaled replica, which inherits journaling;
  and the verification step (sha256 of both sides in parallel).
Runs are interleaved A, B, C, A, B, C, ... and the median is reported, since this machine is
shared and noisy. Prints MB/s per method and the ratio A/B.

  .venv/bin/python bench/copy_throughput.py [--size-mib 1024] [--repeat 3]
"""
import argparse
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "actions"), str(REPO / "sandbox")]

import yaml  # noqa: E402

from lib import copying, mirroring, sync_check  # noqa: E402
from lib.ceph_cli import CephCli  # noqa: E402
from lib.errors import CephMigrateError  # noqa: E402
from lib.settings import DESTINATION, SOURCE, Settings  # noqa: E402
from rbd_writer import write_random  # noqa: E402


def sandbox_settings(mode: str) -> Settings:
    path = subprocess.run([sys.executable, str(REPO / "sandbox" / "ceph_sandbox.py"), "config"],
                          capture_output=True, text=True).stdout.strip()
    if not path:
        sys.exit("the sandbox is not up: python3 sandbox/ceph_sandbox.py up")
    return Settings.from_config(dict(yaml.safe_load(Path(path).read_text()), mirror_mode=mode))


def make_source(settings: Settings, image: str, size_mib: int) -> None:
    spec = "%s/%s" % (settings.pools.mirrored_cinder, image)
    settings.rbd(SOURCE).run_text("create", spec, "--size", "%dM" % size_mib)
    write_random(settings.source, spec, size_mib)


def mirrored(settings: Settings, image: str, mode: str):
    pool = settings.pools.mirrored_cinder
    source = settings.image(SOURCE, pool, image)
    replica = settings.image(DESTINATION, pool, image)
    mirroring.enable_mirroring(source, replica, mode)
    result = sync_check.wait_for_sync(mode, source, replica, 900, 0.5)
    if not result["in_sync"]:
        sys.exit("replica of %s did not sync: %s" % (image, result))
    return source, replica


def raw_pipe(src: CephCli, dst: CephCli, src_spec: str, dst_spec: str) -> float:
    started = time.monotonic()
    export = subprocess.Popen(src.argv(["export", "--no-progress", src_spec, "-"], False),
                              stdout=subprocess.PIPE)
    imported = subprocess.run(dst.argv(["import", "--no-progress", "-", dst_spec], False),
                              stdin=export.stdout, check=True)
    export.stdout.close()
    if export.wait() != 0 or imported.returncode != 0:
        sys.exit("rbd export | rbd import failed")
    return time.monotonic() - started


def remove(cli: CephCli, spec: str) -> None:
    try:
        cli.run_text("rm", "--no-progress", spec)
    except CephMigrateError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-journal", action="store_true", help="skip method C")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    settings = sandbox_settings("snapshot")
    pools = settings.pools
    src_cli, dst_cli = settings.rbd(SOURCE), settings.rbd(DESTINATION)
    snap_image = "bench-%s" % uuid.uuid4().hex[:8]
    journal_image = snap_image + "-j"
    print("preparing %d MiB of random data, mirrored in snapshot mode%s ..."
          % (args.size_mib, "" if args.no_journal else " and journal mode"), flush=True)
    make_source(settings, snap_image, args.size_mib)
    _, replica = mirrored(settings, snap_image, "snapshot")
    journal_replica = None
    if not args.no_journal:
        make_source(settings, journal_image, args.size_mib)
        _, journal_replica = mirrored(settings, journal_image, "journal")
    times = {"A": [], "B": [], "C": []}
    verify_times = []
    try:
        for _ in range(args.repeat):
            target = settings.image(DESTINATION, pools.destination_cinder, snap_image + "-copy")
            result = copying.copy_replica(replica, target, settings.copy_features, 3600,
                                          settings.image(SOURCE, pools.mirrored_cinder, snap_image))
            times["A"].append(result["seconds"])
            started = time.monotonic()
            copying.verify_copy(settings.image(SOURCE, pools.mirrored_cinder, snap_image),
                                target, 3600, record=False)
            verify_times.append(time.monotonic() - started)
            remove(dst_cli, target.spec)

            raw_spec = "%s/%s-raw" % (pools.destination_cinder, snap_image)
            source_spec = "%s/%s" % (pools.mirrored_cinder, snap_image)
            times["B"].append(raw_pipe(src_cli, dst_cli, source_spec, raw_spec))
            remove(dst_cli, raw_spec)

            if journal_replica is not None:
                plain = "%s/%s-plain" % (pools.destination_cinder, journal_image)
                started = time.monotonic()
                dst_cli.run_text("cp", "--no-progress", journal_replica.spec, plain,
                                 timeout=3600)
                times["C"].append(time.monotonic() - started)
                remove(dst_cli, plain)
    finally:
        for image in (snap_image, journal_image):
            try:
                mirroring.disable_mirroring(settings.image(SOURCE, pools.mirrored_cinder, image),
                                            dst_cli, discard_replica=True)
            except CephMigrateError:
                pass
            remove(src_cli, "%s/%s" % (pools.mirrored_cinder, image))

    def rate(seconds):
        return size / 1e6 / statistics.median(seconds)

    print("\n%-58s %8s %9s" % ("method (%d MiB, median of %d)" % (args.size_mib, args.repeat),
                               "seconds", "MB/s"))
    rows = [("A  pack copy step: rbd cp --image-feature (in cephpa1)", times["A"]),
            ("B  raw: rbd export (ceph) | rbd import (cephpa1)", times["B"])]
    if times["C"]:
        rows.append(("C  plain rbd cp of a journaled replica (inherits it)", times["C"]))
    rows.append(("   verify step: sha256 of both sides, in parallel", verify_times))
    for label, seconds in rows:
        print("%-58s %8.2f %9.1f" % (label, statistics.median(seconds), rate(seconds)))
    print("\nratio A/B (pack copy vs raw pipe): %.2f" % (rate(times["A"]) / rate(times["B"])))
    if times["C"]:
        print("ratio A/C (explicit features vs inherited journaling): %.2f"
              % (rate(times["A"]) / rate(times["C"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
