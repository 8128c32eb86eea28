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

  .venv/bin/python bench/server_window.py [--sizes 1,4,16] [--written 0,64] [--fill-mib 256]
"""
import argparse
import io
import os
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "actions"), str(REPO / "sandbox"), str(REPO / "bench")]

from sandbox.pack_config import local_config  # noqa: E402
from runner.actions import run_python_action  # noqa: E402
from runner.local import LocalRunner  # noqa: E402
from lib.settings import DESTINATION, SOURCE, Settings  # noqa: E402
from rbd_writer import write_random  # noqa: E402
import bench_volumes  # noqa: E402
from cutover_downtime import reclaimed, used_raw  # noqa: E402

HEAD = "  %-4s %-8s %-8s %-6s %-11s %-9s %-7s %-9s %-9s %-9s"
ROW = "  %-4d %-8s %-8.1f %-6.1f %-11.1f %-9.1f %-7.1f %-9.1f %-9.1f %-9.2f"


def act(config, name, **params):
    ok, result = run_python_action(name, config, params)
    if not ok:
        sys.exit("%s failed: %s" % (name, result))
    return result


def migrate(config, settings, server_id, written_mib):
    def answer(gate, params):
        if gate == "approve_cutover" and written_mib:
            write_random(settings.cluster(SOURCE), "%s/%s_disk" % (
                settings.pools.mirrored_nova, server_id), written_mib, offset_mib=512)
        return {"approved": True}
    run = LocalRunner(config, answer=answer).run("ceph_migrate.migrate_server",
                                                 server_id=server_id)
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
    args = parser.parse_args()
    config = local_config()
    settings = Settings.from_config(config)
    tenant = bench_volumes.tenant(config)
    admin = settings.cloud(SOURCE).connect()
    undo = []
    tag = uuid.uuid4().hex[:6]
    rows = []
    try:
        net = tenant.network.create_network(name="bench-srv-%s" % tag)
        undo.append(lambda: tenant.network.delete_network(net.id, ignore_missing=True))
        subnet = tenant.network.create_subnet(network_id=net.id, ip_version=4,
                                              cidr="10.77.0.0/24", name="bench-srv")
        public = admin.network.find_network("public").id
        router = tenant.network.create_router(name="bench-srv-%s" % tag,
                                              external_gateway_info={"network_id": public})
        undo.append(lambda: tenant.network.delete_router(router.id, ignore_missing=True))
        tenant.network.add_interface_to_router(router, subnet.id)
        undo.append(lambda: tenant.network.remove_interface_from_router(router, subnet.id))
        image = tenant.image.create_image(name="bench-srv", disk_format="raw",
                                          container_format="bare",
                                          data=io.BytesIO(os.urandom(4 << 20)))
        undo.append(lambda: tenant.image.delete_image(image.id, ignore_missing=True))
        servers = {}
        for size in [int(s) for s in args.sizes.split(",")]:
            flavor = admin.compute.create_flavor(name="bench-%dg-%s" % (size, tag), vcpus=1,
                                                 ram=64, disk=size)
            undo.append(lambda f=flavor.id: admin.compute.delete_flavor(f, ignore_missing=True))
            port = tenant.network.create_port(network_id=net.id)
            undo.append(lambda p=port.id: tenant.network.delete_port(p, ignore_missing=True))
            fip = tenant.network.create_ip(floating_network_id=public, port_id=port.id)
            undo.append(lambda i=fip.id: tenant.network.delete_ip(i, ignore_missing=True))
            vm = tenant.compute.create_server(name="bench-%dg" % size, flavor_id=flavor.id,
                                              image_id=image.id, networks=[{"port": port.id}])
            undo.append(lambda s=vm.id: (admin.compute.delete_server(s, force=True),
                                         admin.compute.wait_for_delete(
                                             admin.compute.get_server(s), wait=120)))
            tenant.compute.wait_for_server(vm, status="ACTIVE", failures=["ERROR"], wait=120)
            print("%d GiB server %s: writing %d MiB of random data into its root ..."
                  % (size, vm.id, args.fill_mib), flush=True)
            write_random(settings.cluster(SOURCE), "%s/%s_disk" % (
                settings.pools.mirrored_nova, vm.id), args.fill_mib)
            servers[size] = vm.id
        destination = settings.cloud(DESTINATION).connect()
        dest_public = destination.network.find_network("public").id
        dest_project = destination.identity.find_project("tenant").id
        exported = act(config, "export_tenant", project="tenant")["document"]
        undo.append(lambda: act(config, "rollback_tenant",
                                source_project_id=exported["project"]["id"]))
        act(config, "import_tenant", export=exported, destination_project=dest_project,
            translation={"external_networks": {public: dest_public}},
            kinds=["project", "flavor", "network", "subnet", "router", "security_group",
                   "security_group_rule"])
        baseline = used_raw(settings)
        print("\nthe window of migrate_server (stop request -> counterpart ACTIVE), s; cold = "
              "window + the pre-sync it skipped:")
        print(HEAD % ("GiB", "written", "window", "stop", "last delta", "register",
                      "create", "pre-sync", "cold", "cold/warm"), flush=True)
        for size, server_id in servers.items():
            for written in [int(w) for w in args.written.split(",")]:
                found = migrate(config, settings, server_id, written)
                act(config, "rollback_server", server_id=server_id)
                reclaimed(settings, baseline, size)
                cold = found["seconds"] + found["presync"]
                rows.append((size, written, found))
                print(ROW % (size, "%d MiB" % written, found["seconds"], found["stop"],
                             found["final_sync"], found["register"], found["create"],
                             found["presync"], cold, cold / found["seconds"]), flush=True)
    finally:
        for step in reversed(undo):
            try:
                step()
            except BaseException as exc:      # cleanup goes on
                print("cleanup: %s" % exc, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
