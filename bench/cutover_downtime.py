#!/usr/bin/env python3
"""Benchmark (not a test): how long a data volume is out of service at the cutover, against
its size and what the tenant wrote last, for each copy method; and the whole migration
against a raw ``rbd export | rbd import`` of the same volume.

Runs the real migrate_volume workflow through the local runner on the sandbox clouds. Each
volume (--sizes GiB) is filled with random data once; for every method and every --written
MiB, the tenant admin's gate first writes that much (the tenant still working), then
approves: the downtime runs from that approval (I/O stopped) to the volume available at the
destination (the cleanup gate), split into its phases. The destination volume is deleted
between runs (rollback), the source kept.

  .venv/bin/python bench/cutover_downtime.py [--sizes 1,4] [--written 0,64]
      [--methods mirror,export_diff,promote]

promote is the mirror method with placement promote: its full check runs after the window
(against the read-only source, on a snapshot taken at the promotion), shown as "after".

8 GiB needs larger OSDs: CEPH_MIGRATE_OSD_GIB=40 sandbox/ceph_sandbox.py up. The OSDs are
sparse files that BlueStore never gives space back to the host from: budget the host disk for
the peak (source + replica + copy) of the largest size.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions"), str(REPO / "sandbox"), str(REPO / "bench")]

from sandbox.pack_config import local_config  # noqa: E402
from runner.local import LocalRunner  # noqa: E402
from lib.settings import DESTINATION, SOURCE, Settings  # noqa: E402
from rbd_writer import write_random  # noqa: E402
from copy_throughput import raw_pipe, remove  # noqa: E402
import bench_volumes  # noqa: E402
from bench_volumes import random_volume  # noqa: E402

PHASES = {"final sync": ("final_snapshot", "final_sync", "final_round"),
          "copy": ("copy_replica",), "promote": ("promote",),
          "verify": ("verify_copy", "verify_delta"),
          "snapshots": ("drop_copy_snapshots",), "manage": ("manage_volume",),
          "after": ("verify_in_place",)}     # promote: checked once the volume is available
HEAD = "  %-4s %-12s %-8s %-9s %-11s %-7s %-8s %-7s %-10s %-7s %-7s"
ROW = "  %-4d %-12s %-8s %-9.1f %-11.1f %-7.1f %-8.1f %-7.1f %-10.1f %-7.1f %-7.1f"


def run_inputs(method):
    """migrate_volume's inputs for a --methods entry (promote: mirror, placement promote)."""
    return {"method": "mirror", "placement": "promote"} if method == "promote" \
        else {"method": method}


def migrate(config, settings, volume_id, spec, method, written_mib):
    marks = {}

    def answer(gate, params):
        if gate == "approve_cutover" and written_mib:
            write_random(settings.cluster(SOURCE), spec, written_mib, offset_mib=64)
        marks[gate] = time.monotonic()
        return {"approved": gate != "approve_cleanup"}    # the source stays as it is
    run = LocalRunner(config, answer=answer).run("ceph_migrate.migrate_volume",
                                                 volume_id=volume_id, **run_inputs(method))
    if run.status != "succeeded":
        sys.exit("failed: %s" % run.output)
    took = {}
    for task in run.tasks:
        took[task.task] = took.get(task.task, 0.0) + task.seconds
    phases = {name: sum(took.get(t, 0.0) for t in tasks) for name, tasks in PHASES.items()}
    gates = ("approve_mirroring", "approve_cutover", "approve_cleanup")
    return {"downtime": marks["approve_cleanup"] - marks["approve_cutover"] - phases["after"],
            "whole": sum(s for t, s in took.items() if t not in gates),
            "copy+verify": sum(took.get(t, 0.0) for t in (
                "presync", "verify_presync", "copy_replica", "verify_copy", "final_round",
                "verify_delta")),
            "run": run, **phases}


def used_raw(settings) -> int:
    return settings.ceph(DESTINATION).run("df")["stats"]["total_used_raw_bytes"]


def reclaimed(settings, baseline, size_gib, timeout=300):
    """Wait until the destination OSD has given back a removed image's space (BlueStore frees
    its objects asynchronously) to within a quarter of SIZE_GIB of BASELINE: the plan's
    capacity check would refuse a large volume until then."""
    deadline = time.monotonic() + timeout
    while used_raw(settings) > baseline + size_gib * 2 ** 30 / 4 and \
            time.monotonic() < deadline:
        time.sleep(2)


def undo(volume_id):
    """The destination volume and everything the run left at the source (rollback)."""
    subprocess.run([sys.executable, "-m", "runner", "run", "ceph_migrate.rollback",
                    "volume_id=" + volume_id, "--sandbox", "--yes"], cwd=str(REPO),
                   capture_output=True, check=True)


def sparse(config, settings, tenant, methods) -> int:
    """Work against allocated data: a 3 GiB volume holding 20 MiB."""
    volume, spec = random_volume(tenant, settings, 3, "bench-sparse", fill_mib=20,
                                 offset_mib=1000)
    print("a 3 GiB volume holding 20 MiB (provisioned 3072 MiB):")
    try:
        for method in methods:
            found = migrate(config, settings, volume.id, spec, method, 0)
            undo(volume.id)
            out = found["run"].output
            if method == "export_diff":
                moved = out["copied"]["bytes"] + (out.get("synced") or {}).get("bytes", 0)
                hashed = sum(((t.result or {}).get("result") or {}).get("hashed_bytes", 0)
                             for t in found["run"].tasks
                             if t.task in ("verify_presync", "verify_delta"))
            elif method == "promote":    # no copy; the check hashes both whole images
                moved, hashed = 0, 2 * 3 * 2 ** 30
            else:        # rbd cp reads and rbd export hashes the whole provisioned image
                moved, hashed = 3 * 2 ** 30, 2 * 3 * 2 ** 30
            print("  %-12s read %7.1f MiB, hashed %7.1f MiB; copy and verify %.1f s, whole "
                  "migration %.1f s" % (method, moved / 2 ** 20, hashed / 2 ** 20,
                                        found["copy+verify"], found["whole"]))
    finally:
        undo(volume.id)
        tenant.block_storage.delete_volume(volume.id, ignore_missing=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,4")
    parser.add_argument("--written", default="0,64", help="MiB written at the cutover gate")
    parser.add_argument("--methods", default="mirror,export_diff,promote")
    parser.add_argument("--sparse", action="store_true",
                        help="instead: a 3 GiB volume holding 20 MiB, bytes moved and hashed")
    args = parser.parse_args()
    config = local_config()
    settings = Settings.from_config(config)
    tenant = bench_volumes.tenant(config)
    pools = settings.pools
    if args.sparse:
        return sparse(config, settings, tenant, args.methods.split(","))
    rows, wholes = [], []
    print("cutover downtime of migrate_volume (I/O stopped -> destination volume available), s:")
    print(HEAD % ("GiB", "method", "written", "downtime", "final sync", "copy", "promote",
                  "verify", "snapshots", "manage", "after"), flush=True)
    baseline = used_raw(settings)
    for size in [int(s) for s in args.sizes.split(",")]:
        print("%d GiB: filling with random data ..." % size, flush=True)
        volume, spec = random_volume(tenant, settings, size)
        raw_spec = "%s/bench-raw-%s" % (pools.destination_cinder, volume.id[:8])
        raw = raw_pipe(settings.rbd(SOURCE), settings.rbd(DESTINATION), spec, raw_spec)
        remove(settings.rbd(DESTINATION), raw_spec)
        reclaimed(settings, baseline, size)
        try:
            for method in args.methods.split(","):
                for written in [int(w) for w in args.written.split(",")]:
                    print("%d GiB, %s, %d MiB written at the stop ..." % (size, method, written),
                          flush=True)
                    found = migrate(config, settings, volume.id, spec, method, written)
                    undo(volume.id)
                    reclaimed(settings, baseline, size)
                    rows.append((size, method, written, found))
                    print(ROW % (size, method, "%d MiB" % written, found["downtime"],
                                 found["final sync"], found["copy"], found["promote"],
                                 found["verify"], found["snapshots"], found["manage"],
                                 found["after"]), flush=True)
                    if written == 0:
                        wholes.append((size, method, found["whole"], raw))
        finally:
            undo(volume.id)
            tenant.block_storage.delete_volume(volume.id, ignore_missing=True)
    print("\nwhole migration (start -> destination volume available, gates answered at once)"
          " against rbd export | rbd import of the same volume:")
    for size, method, whole, raw in wholes:
        print("  %d GiB %-12s %.1f s, raw pipe %.1f s, ratio %.2f"
              % (size, method, whole, raw, whole / raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
