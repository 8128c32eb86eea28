#!/usr/bin/env python3
"""Benchmark (not a test): a batch of volumes migrated at concurrency 1, 2 and 4, against the
sum of their sizes over the raw ``rbd export | rbd import`` rate.

On the sandbox clouds: --count volumes of --size-gib GiB full of random data, each migrated by
the real migrate_volume workflow (the local runner, one process per volume, at most
--concurrency at a time, every gate approved, the cleanup too), then rolled back before the
next concurrency. A batch in StackStorm (migrate_batch) runs the same workflow per volume.

  .venv/bin/python bench/batch_throughput.py [--count 10] [--size-gib 1]
      [--concurrency 1,2,4] [--methods export_diff,mirror]
"""
import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions"), str(REPO / "sandbox"), str(REPO / "bench")]

from sandbox.pack_config import local_config  # noqa: E402
from lib.settings import DESTINATION, SOURCE, Settings  # noqa: E402
from copy_throughput import raw_pipe, remove  # noqa: E402
import bench_volumes  # noqa: E402
from bench_volumes import random_volume  # noqa: E402


def runner(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "runner", "run"] + list(args) +
                          ["--sandbox", "--yes"], cwd=str(REPO), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(args), done.stdout[-2000:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--size-gib", type=int, default=1)
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--methods", default="export_diff,mirror")
    args = parser.parse_args()
    config = local_config()
    settings = Settings.from_config(config)
    tenant = bench_volumes.tenant(config)
    pools = settings.pools
    ids = []
    try:
        print("%d volumes of %d GiB, random data ..." % (args.count, args.size_gib), flush=True)
        for _ in range(args.count):
            ids.append(random_volume(tenant, settings, args.size_gib, "batch")[0].id)
        raw_spec = "%s/bench-raw-%s" % (pools.destination_cinder, ids[0][:8])
        raw = raw_pipe(settings.rbd(SOURCE), settings.rbd(DESTINATION), "%s/volume-%s" % (
            pools.mirrored_cinder, ids[0]), raw_spec)
        remove(settings.rbd(DESTINATION), raw_spec)
        rate = args.size_gib * 2 ** 30 / raw
        ideal = args.count * args.size_gib * 2 ** 30 / rate
        rows = []
        for method in args.methods.split(","):
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                print("%s at concurrency %d ..." % (method, concurrency), flush=True)
                started = time.monotonic()
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    list(pool.map(lambda vid: runner("ceph_migrate.migrate_volume",
                                                     "volume_id=" + vid, "method=" + method),
                                  ids))
                rows.append((method, concurrency, time.monotonic() - started))
                for vid in ids:
                    runner("ceph_migrate.rollback", "volume_id=" + vid)
    finally:
        for vid in ids:
            tenant.block_storage.delete_volume(vid, ignore_missing=True)
    print("\n%d volumes of %d GiB; raw rbd export | rbd import %.0f MB/s, so %.1f s for all"
          % (args.count, args.size_gib, rate / 1e6, ideal))
    for method, concurrency, seconds in rows:
        print("  %-12s concurrency %d: %6.1f s, %.2f x the raw pipe" % (
            method, concurrency, seconds, seconds / ideal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
