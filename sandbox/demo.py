#!/usr/bin/env python3
"""Migrate a tenant's data volume and boot volume from cloud pa1 (Ceph cluster ``ceph``) to
cloud ct1 (``cephpa1``) on the running sandboxes, with the pack's real workflows through the
local runner: every task shown as it runs, every gate answered (and said so), content verified
by sha256, a summary at the end.

  .venv/bin/python sandbox/demo.py [--size-gib 1] [--fill-mib 256] [--mode snapshot|journal]
"""
import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions")]

from sandbox.pack_config import local_config  # noqa: E402
from runner.local import LocalRunner  # noqa: E402
from lib.settings import DESTINATION, SOURCE, Settings  # noqa: E402
from rbd_writer import write_random  # noqa: E402


def answer(gate: str, params: Dict[str, Any]) -> Dict[str, bool]:
    print("  gate %-22s for %-12s approved (demo)" % (gate, params.get("route")), flush=True)
    return {"approved": True}


def tenant_volume(conn: Any, settings: Settings, size_gib: int, fill_mib: int,
                  bootable: bool) -> Any:
    """A volume of the tenant at pa1 with random data written into its RBD image."""
    kind = "boot" if bootable else "data"
    volume = conn.block_storage.create_volume(
        name="demo-%s-%s" % (kind, uuid.uuid4().hex[:6]), size=size_gib, volume_type="ceph",
        description="ceph_migrate demo", metadata={"demo": kind})
    volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"],
                                                interval=1, wait=120)
    if bootable:
        conn.block_storage.set_volume_bootable_status(volume, True)
    write_random(settings.cluster(SOURCE), "%s/volume-%s" % (settings.pools.mirrored_cinder,
                                                             volume.id), fill_mib)
    print("created %s volume %s (%s, %d GiB, %d MiB of random data) in the tenant's project at "
          "pa1" % (kind, volume.id, volume.name, size_gib, fill_mib), flush=True)
    return volume


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gib", type=int, default=1)
    parser.add_argument("--fill-mib", type=int, default=256)
    parser.add_argument("--mode", choices=["snapshot", "journal"], default="snapshot")
    parser.add_argument("--method", choices=["mirror", "export_diff"],
                        help="how the data volume crosses (default the pack's copy.method)")
    args = parser.parse_args()

    config = local_config()
    if "source_cloud" not in config:
        print("the OpenStack sandbox is not up: .venv/bin/python sandbox/openstack_sandbox.py "
              "up", file=sys.stderr)
        return 1
    import openstack.config
    settings = Settings.from_config(config)
    clouds = openstack.config.OpenStackConfig(config_files=[config["source_cloud"]
                                                            ["clouds_yaml"]])
    tenant = openstack.connection.Connection(config=clouds.get_one(cloud="pa1-tenant"))
    data = tenant_volume(tenant, settings, args.size_gib, args.fill_mib, bootable=False)
    boot = tenant_volume(tenant, settings, args.size_gib, args.fill_mib, bootable=True)

    runner = LocalRunner(config, answer=answer, log=lambda line: print(line, flush=True))
    rows: List[List[str]] = []
    for ref, volume, inputs in (("ceph_migrate.migrate_volume", data, dict(
            {"mode": args.mode}, **({"method": args.method} if args.method else {}))),
                                ("ceph_migrate.migrate_boot_volume", boot, {})):
        print("\n== %s volume_id=%s" % (ref, volume.id), flush=True)
        started = time.monotonic()
        run = runner.run(ref, volume_id=volume.id, **inputs)
        seconds = time.monotonic() - started
        output = run.output or {}
        print("   outcome: %s" % output.get("outcome"), flush=True)
        if run.status != "succeeded":
            print("FAILED: %s" % (run.errors or output), file=sys.stderr)
            return 1
        new = output["volume"]
        copy = settings.rbd(DESTINATION).export_sha256(new["rbd_image"], timeout=600)[0]
        source = settings.rbd(SOURCE).export_sha256("%s/volume-%s" % (
            settings.pools.mirrored_cinder, volume.id), timeout=600)[0]
        verdict = "sha256 equal" if copy == source and output["verified"]["verified"] \
            else "DIFFER"
        rows.append([ref.split(".")[1], volume.id, new["volume_id"], "%s GiB" % new["size_gib"],
                     "%.0fs" % seconds, "%s... %s" % (copy[:12], verdict)])
        if verdict != "sha256 equal":
            print("content differs: source %s, destination %s" % (source, copy),
                  file=sys.stderr)
            return 1

    print("\nSummary (pa1 -> ct1, owned by the tenant's project at ct1):")
    header = ["workflow", "source volume", "destination volume", "size", "took", "content"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print("\nUndo one (destination deleted, source as it was):\n"
          "  .venv/bin/python -m runner run ceph_migrate.rollback volume_id=%s procedure=boot "
          "--sandbox --yes" % boot.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
