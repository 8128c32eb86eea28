#!/usr/bin/env python3
"""Benchmark (not a test): how long a data volume is out of service at the cutover, against
its size. Runs the real migrate_volume workflow through the local runner on the sandbox clouds
for volumes of each --sizes GiB (filled with random data) and measures from the tenant admin's
approval (I/O stopped) to the managed volume being available at the destination, split into
the final sync, the copy, the verification and the manage.

  .venv/bin/python bench/cutover_downtime.py [--sizes 1,4]
"""
import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions"), str(REPO / "sandbox")]

from sandbox.pack_config import local_config  # noqa: E402
from runner.local import LocalRunner  # noqa: E402
from lib.settings import SOURCE, Settings  # noqa: E402
from rbd_writer import write_random  # noqa: E402


def main() -> int:
    import openstack.config

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,4")
    args = parser.parse_args()
    config = local_config()
    settings = Settings.from_config(config)
    clouds = openstack.config.OpenStackConfig(config_files=[config["source_cloud"]
                                                            ["clouds_yaml"]])
    tenant = openstack.connection.Connection(config=clouds.get_one(cloud="pa1-tenant"))
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        volume = tenant.block_storage.create_volume(name="bench-%s" % uuid.uuid4().hex[:6],
                                                    size=size, volume_type="ceph")
        volume = tenant.block_storage.wait_for_status(volume, "available", interval=1, wait=120)
        write_random(settings.cluster(SOURCE), "%s/volume-%s" % (
            settings.pools.mirrored_cinder, volume.id), size * 1024)
        marks = {}

        def answer(gate, params):
            marks[gate] = time.monotonic()
            return {"approved": gate != "approve_cleanup"}    # keep the source mirrored
        run = LocalRunner(config, answer=answer).run("ceph_migrate.migrate_volume",
                                                     volume_id=volume.id)
        if run.status != "succeeded":
            print("failed: %s" % run.output)
            return 1
        took = {t.task: t.seconds for t in run.tasks}
        downtime = marks["approve_cleanup"] - marks["approve_cutover"]
        rows.append((size, downtime, took.get("final_snapshot", 0) + took["final_sync"],
                     took["copy_replica"], took["verify_copy"], took["manage_volume"]))
        subprocess.run([sys.executable, "-m", "runner", "run", "ceph_migrate.rollback",
                        "volume_id=" + volume.id, "--sandbox", "--yes"], cwd=str(REPO),
                       capture_output=True)
        tenant.block_storage.delete_volume(volume.id, ignore_missing=True)
    print("cutover downtime of migrate_volume (I/O stopped -> destination volume available):")
    print("  %-6s %-10s %-12s %-8s %-8s %-8s"
          % ("GiB", "downtime", "final sync", "copy", "verify", "manage"))
    for size, downtime, final, copy, verify, manage in rows:
        print("  %-6d %-10.1f %-12.1f %-8.1f %-8.1f %-8.1f"
              % (size, downtime, final, copy, verify, manage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
