#!/usr/bin/env python3
"""Benchmark (not a test): a tenant's servers migrated in waves, --count servers at
concurrency 1 and 2: the whole run's wall time, each server's run and its window (from the
stop request to its counterpart ACTIVE at ct1 with its port and floating IP).

On the sandbox clouds: --count image-booted servers at pa1 (a --size-gib root holding
--fill-mib MiB of random data, a port with a floating IP each), their tenant's infrastructure
imported once. Each server is migrated by the real migrate_server workflow, one local-runner
process per server (as migrate_servers starts one execution per server in StackStorm), at most
--concurrency at a time, every gate approved; the processes share the tenant's mapping (the
local runner's datastore file). Every server is rolled back before the next concurrency.

  .venv/bin/python bench/tenant_servers.py [--count 6] [--concurrency 1,2] [--size-gib 1]
      [--fill-mib 64]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions"), str(REPO / "sandbox"), str(REPO / "bench")]
# the tenant's mapping, shared by this process and the runners it starts (set before any action)
os.environ["CEPH_MIGRATE_LOCAL_DATASTORE"] = os.path.join(
    tempfile.mkdtemp(prefix="bench-tenant-servers-"), "datastore.json")

from bench_servers import (act, boot, infrastructure, routed_network, sandbox,  # noqa: E402
                           undone)

HEAD = "  %-11s %-8s %-15s %-22s %-7s"
ROW = "  %-11d %-8.1f %-15.1f %-22s %-7.2f"


def migrate(server_id: str) -> dict:
    """One server through migrate_server in a runner process of its own: its run's seconds
    and its window."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "runner", "run", "ceph_migrate.migrate_server",
                           "server_id=" + server_id, "--sandbox", "--yes"], cwd=str(REPO),
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    lines = done.stdout.splitlines()
    begin = max(i for i, line in enumerate(lines) if line == "{")
    result = json.loads("\n".join(lines[begin:]))
    if result["status"] != "succeeded":
        sys.exit("server %s failed: %s" % (server_id, result["output"]))
    return {"seconds": seconds, "window": result["output"]["downtime"]["seconds"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--concurrency", default="1,2")
    parser.add_argument("--size-gib", type=int, default=1)
    parser.add_argument("--fill-mib", type=int, default=64)
    args = parser.parse_args()
    config, settings, tenant, admin = sandbox()
    undo: list = []
    tag = uuid.uuid4().hex[:6]
    try:
        network = routed_network(tenant, admin, undo, tag, "10.78.0.0/24")
        print("%d servers of %d GiB, %d MiB of random data in each root ..."
              % (args.count, args.size_gib, args.fill_mib), flush=True)
        servers = [boot(settings, tenant, admin, undo, network, "w%d" % i, args.size_gib,
                        args.fill_mib, tag) for i in range(args.count)]
        infrastructure(config, settings, undo, network["public"])
        print("\n%d servers, each its own migrate_server run; s:" % args.count)
        print(HEAD % ("concurrency", "wall", "sum of the runs", "windows min/med/max",
                      "speedup"), flush=True)
        first = None
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                runs = list(pool.map(migrate, servers))
            wall = time.monotonic() - started
            first = first or wall
            windows = sorted(r["window"] for r in runs)
            total = sum(r["seconds"] for r in runs)
            print(ROW % (concurrency, wall, total, "%.1f / %.1f / %.1f" % (
                windows[0], statistics.median(windows), windows[-1]), first / wall), flush=True)
            for server_id in servers:
                act(config, "rollback_server", server_id=server_id)
    finally:
        undone(undo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
