"""The benchmarks' servers on the sandbox clouds: a routed network of the tenant's with an
image, servers on it (a root of random data), and the tenant's infrastructure at ct1. Each
helper appends its undo to UNDO (run in reverse)."""
import io
import os
import sys
from typing import Any, Callable, Dict, List, Tuple

from runner.actions import run_python_action
from sandbox.pack_config import local_config
from lib.settings import DESTINATION, SOURCE, Settings
from rbd_writer import write_random
import bench_volumes

Undo = List[Callable[[], Any]]


def act(config: Dict[str, Any], name: str, **params: Any) -> Dict[str, Any]:
    ok, result = run_python_action(name, config, params)
    if not ok:
        sys.exit("%s failed: %s" % (name, result))
    return result


def sandbox() -> Tuple[Dict[str, Any], Settings, Any, Any]:
    """The pack config of the running sandboxes, its settings, the tenant's and the source
    admin's connections."""
    config = local_config()
    settings = Settings.from_config(config)
    return config, settings, bench_volumes.tenant(config), settings.cloud(SOURCE).connect()


def undone(undo: Undo) -> None:
    """Every undo step, the last first; one that fails is said and the rest go on."""
    for step in reversed(undo):
        try:
            step()
        except BaseException as exc:      # cleanup goes on
            print("cleanup: %s" % exc, file=sys.stderr)


def routed_network(tenant: Any, admin: Any, undo: Undo, tag: str, cidr: str) -> Dict[str, Any]:
    """A network with a router to the public network, and a small raw image to boot from."""
    net = tenant.network.create_network(name="bench-srv-%s" % tag)
    undo.append(lambda: tenant.network.delete_network(net.id, ignore_missing=True))
    subnet = tenant.network.create_subnet(network_id=net.id, ip_version=4, cidr=cidr,
                                          name="bench-srv")
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
    return {"net": net, "public": public, "image": image}


def boot(settings: Settings, tenant: Any, admin: Any, undo: Undo, network: Dict[str, Any],
         name: str, size_gib: int, fill_mib: int, tag: str, ephemeral_gib: int = 0) -> str:
    """An image-booted server on its own flavor (a SIZE_GIB root, an EPHEMERAL_GIB ephemeral
    disk), a port with a floating IP, FILL_MIB of random data in its root (and its ephemeral
    disk); its id."""
    flavor = admin.compute.create_flavor(name="bench-%s-%s" % (name, tag), vcpus=1, ram=64,
                                         disk=size_gib, ephemeral=ephemeral_gib)
    undo.append(lambda: admin.compute.delete_flavor(flavor.id, ignore_missing=True))
    port = tenant.network.create_port(network_id=network["net"].id)
    undo.append(lambda: tenant.network.delete_port(port.id, ignore_missing=True))
    fip = tenant.network.create_ip(floating_network_id=network["public"], port_id=port.id)
    undo.append(lambda: tenant.network.delete_ip(fip.id, ignore_missing=True))
    vm = tenant.compute.create_server(name="bench-%s" % name, flavor_id=flavor.id,
                                      image_id=network["image"].id,
                                      networks=[{"port": port.id}])
    undo.append(lambda: (admin.compute.delete_server(vm.id, force=True),
                         admin.compute.wait_for_delete(admin.compute.get_server(vm.id),
                                                       wait=120)))
    tenant.compute.wait_for_server(vm, status="ACTIVE", failures=["ERROR"], wait=120)
    for disk in ["_disk"] + (["_disk.eph0"] if ephemeral_gib else []):
        write_random(settings.cluster(SOURCE), "%s/%s%s" % (settings.pools.mirrored_nova, vm.id,
                                                            disk), fill_mib)
    return vm.id


def infrastructure(config: Dict[str, Any], settings: Settings, undo: Undo,
                   public: str) -> Dict[str, Any]:
    """The tenant's infrastructure imported into ct1's `tenant` (its router's external network
    translated); its export."""
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
    return exported
