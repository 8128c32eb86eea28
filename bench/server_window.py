#!/usr/bin/env python3
"""Benchmark (not a test): how long a server is out of service when it moves, against the size
of its disk and what it wrote after the last pre-sync round; and the same with no pre-sync,
the cold way (OS Migrate's: everything copied after the stop).

Runs the real migrate_server workflow through the local runner on the sandbox clouds. For each
--sizes GiB, an image-booted server at pa1 on a flavor of that root size, its root holding
--fill-mib MiB of random data (the guest's data; the rest is never written, as on a real
disk); its tenant's infrastructure imported once. For every --written MiB, the tenant admin's
gate first writes that much into the running server's root (the guest still working), then
approves: the window runs from the stop request to the counterpart ACTIVE at ct1 with its port
and floating IP (the workflow's own `downtime`), by phase. The cold figure is the window plus
the pre-sync it skipped (the full copy and full check, which then fall inside the window).
Each run is rolled back (rollback_server) before the next, the source running again.

With --root-target volume the root lands as a boot volume (managed inside the window instead
of registered); with --ephemeral-gib N each server also has an ephemeral disk of N GiB holding
--fill-mib MiB, carried (ephemeral=true: the counterpart stopped and started once more).

  .venv/bin/python bench/server_window.py [--sizes 1,4,16] [--written 0,64] [--fill-mib 256]
      [--root-target image|volume] [--ephemeral-gib 0]
"""
import argparse
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions"), str(REPO / "sandbox"), str(REPO / "bench")]

from runner.local import LocalRunner  # noqa: E402
from lib.settings import SOURCE  # noqa: E402
from rbd_writer import write_random  # noqa: E402
from bench_servers import (act, boot, infrastructure, routed_network, sandbox,  # noqa: E402
                           undone)
from cutover_downtime import reclaimed, used_raw  # noqa: E402

HEAD = "  %-4s %-8s %-8s %-6s %-11s %-9s %-7s %-9s %-9s %-9s"
ROW = "  %-4d %-8s %-8.1f %-6.1f %-11.1f %-9.1f %-7.1f %-9.1f %-9.1f %-9.2f"


def migrate(config, settings, server_id, written_mib, root_target="image", ephemeral=False):
    def answer(gate, params):
        if gate == "approve_cutover" and written_mib:
            write_random(settings.cluster(SOURCE), "%s/%s_disk" % (
                settings.pools.mirrored_nova, server_id), written_mib, offset_mib=512)
        return {"approved": True}
    run = LocalRunner(config, answer=answer).run("ceph_migrate.migrate_server",
                                                 server_id=server_id, root_target=root_target,
                                                 ephemeral=ephemeral)
    if run.status != "succeeded":
        sys.exit("failed: %s" % run.output)
    presync = sum(t.seconds for t in run.tasks if t.task == "presync")
    return dict(run.output["downtime"], presync=presync)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--written", default="0,64",
                        help="MiB written after the last pre-sync round")
    parser.add_argument("--fill-mib", type=int, default=256)
    parser.add_argument("--root-target", choices=("image", "volume"), default="image")
    parser.add_argument("--ephemeral-gib", type=int, default=0)
    args = parser.parse_args()
    config, settings, tenant, admin = sandbox()
    undo = []
    tag = uuid.uuid4().hex[:6]
    rows = []
    try:
        network = routed_network(tenant, admin, undo, tag, "10.77.0.0/24")
        servers = {}
        for size in [int(s) for s in args.sizes.split(",")]:
            print("%d GiB server: %d MiB of random data in its root ..." % (size, args.fill_mib),
                  flush=True)
            servers[size] = boot(settings, tenant, admin, undo, network, "%dg" % size, size,
                                 args.fill_mib, tag, args.ephemeral_gib)
        infrastructure(config, settings, undo, network["public"])
        baseline = used_raw(settings)
        print("\nthe window of migrate_server (stop request -> counterpart ACTIVE), s; cold = "
              "window + the pre-sync it skipped:")
        print(HEAD % ("GiB", "written", "window", "stop", "last delta", "root",
                      "create", "pre-sync", "cold", "cold/warm"), flush=True)
        for size, server_id in servers.items():
            for written in [int(w) for w in args.written.split(",")]:
                found = migrate(config, settings, server_id, written, args.root_target,
                                bool(args.ephemeral_gib))
                act(config, "rollback_server", server_id=server_id)
                reclaimed(settings, baseline, size)
                cold = found["seconds"] + found["presync"]
                rows.append((size, written, found))
                print(ROW % (size, "%d MiB" % written, found["seconds"], found["stop"],
                             found["final_sync"], found["register"] or found["manage"],
                             found["create"],
                             found["presync"], cold, cold / found["seconds"]), flush=True)
    finally:
        undone(undo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
