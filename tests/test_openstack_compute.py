"""The sandbox clouds' Nova, Neutron and Placement (sandbox/openstack_clouds): servers whose disks
are real RBD images in `vms`, made as libvirt's RBD image backend makes them, and the networks a
tenant has. What the tenant migrations stand on: if these are not honest, neither are they."""
import hashlib
import io
import os
import subprocess
import uuid

import pytest

from lib.settings import DESTINATION, SOURCE
from openstack_env import eventually

VMS = "vms"
GiB = 2 ** 30
MiB = 2 ** 20


def vms_images(settings, side, server_id):
    return sorted(n for n in settings.rbd(side).run("ls", VMS) if n.startswith(server_id))


def head_sha(settings, side, spec, size):
    """sha256 of the first SIZE bytes of an RBD image (rbd export to a pipe, cut short)."""
    argv = settings.rbd(side).argv(["export", "--no-progress", spec, "-"], json_output=False)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        data = proc.stdout.read(size)
    finally:
        proc.kill()
        proc.wait()
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def made(clouds):
    """What a test creates, deleted afterwards in reverse order (servers first)."""
    undo = []
    yield undo
    for delete in reversed(undo):
        try:
            delete()
        except Exception:
            pass


def tenant_network(conn, made, name="net"):
    net = conn.network.create_network(name="%s-%s" % (name, uuid.uuid4().hex[:6]))
    made.append(lambda: conn.network.delete_network(net.id, ignore_missing=True))
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.20.0.0/24",
                                        name=net.name + "-subnet")
    made.append(lambda: conn.network.delete_subnet(subnet.id, ignore_missing=True))
    return net, subnet


def routed(conn, made, subnet, external_id, name="r"):
    """A router from SUBNET to the external network EXTERNAL_ID (what floating IPs need)."""
    router = conn.network.create_router(name="%s-%s" % (name, uuid.uuid4().hex[:6]),
                                        external_gateway_info={"network_id": external_id})
    made.append(lambda: conn.network.delete_router(router.id, ignore_missing=True))
    conn.network.add_interface_to_router(router, subnet.id)
    made.append(lambda: conn.network.remove_interface_from_router(router, subnet.id))
    return router


def flavor(admin, made, **sizes):
    f = admin.compute.create_flavor(name="f-%s" % uuid.uuid4().hex[:6], vcpus=1, ram=64,
                                    **sizes)
    made.append(lambda: admin.compute.delete_flavor(f.id, ignore_missing=True))
    return f


def server(conn, made, wait=True, **attrs):
    s = conn.compute.create_server(name="vm-%s" % uuid.uuid4().hex[:6], **attrs)

    def delete():
        conn.compute.delete_server(s.id, ignore_missing=True, force=True)
        conn.compute.wait_for_delete(s, interval=1, wait=120)
    made.append(delete)
    return conn.compute.wait_for_server(s, status="ACTIVE", failures=["ERROR"], interval=1,
                                        wait=120) if wait else s


def addressed_server(tenant, admin, made, openstack_facts, name, address, ephemeral=0,
                     swap=0):
    """An image-booted server (a 4 MiB raw image, a 1 GiB root, an EPHEMERAL GiB ephemeral
    disk, SWAP MiB of swap) on a routed network of its own, its port with the fixed ADDRESS
    and a floating IP: what a server migration carries. Returns the parts by name (net,
    subnet, public, image, port, fip, server)."""
    net, subnet = tenant_network(tenant, made, name=name)
    public = openstack_facts["clouds"]["pa1"]["network"]["public"]["id"]
    routed(tenant, made, subnet, public, name=name)
    image = tenant.image.create_image(name=name, disk_format="raw", container_format="bare",
                                      data=io.BytesIO(os.urandom(4 << 20)))
    made.append(lambda: tenant.image.delete_image(image.id, ignore_missing=True))
    port = tenant.network.create_port(network_id=net.id, fixed_ips=[
        {"subnet_id": subnet.id, "ip_address": address}])
    made.append(lambda: tenant.network.delete_port(port.id, ignore_missing=True))
    fip = tenant.network.create_ip(floating_network_id=public, port_id=port.id)
    made.append(lambda: tenant.network.delete_ip(fip.id, ignore_missing=True))
    sizes = flavor(admin, made, disk=1, ephemeral=ephemeral, swap=swap)
    vm = server(tenant, made, flavor_id=sizes.id, image_id=image.id,
                networks=[{"port": port.id}])
    made.append(lambda: admin.compute.unlock_server(vm.id))    # the pack locks a moved one
    return {"net": net, "subnet": subnet, "public": public, "image": image, "port": port,
            "fip": fip, "server": vm}


def test_each_cloud_has_a_compute_host_and_an_external_network(openstack_facts, clouds):
    for name in ("pa1", "ct1"):
        facts = openstack_facts["clouds"][name]
        admin = clouds["%s-admin" % name]
        services = {(s.binary, s.host): s.state for s in admin.compute.services()}
        assert services[("nova-compute", facts["compute"]["host"])] == "up", services
        assert [h.name for h in admin.compute.hypervisors()] == [facts["compute"]["host"]]
        public = admin.network.get_network(facts["network"]["public"]["id"])
        assert public.is_router_external and public.provider_network_type == "flat"
        assert public.provider_physical_network == facts["network"]["external_physnet"]
        assert [s.cidr for s in admin.network.subnets(network_id=public.id)] == [
            facts["network"]["public"]["cidr"]]


def test_a_tenant_builds_its_network_and_a_server_gets_a_bound_port(
        settings, openstack_facts, clouds, made):
    """Networks, a router with its gateway on the external network and an interface, a
    security group: what the tenant exports are made of. The server's port binds with no
    agent (the sandbox's ML2 driver) and the server needs no disk in `vms` (no image)."""
    tenant, admin = clouds["pa1-tenant"], clouds["pa1-admin"]
    net, subnet = tenant_network(tenant, made)
    public = openstack_facts["clouds"]["pa1"]["network"]["public"]["id"]
    router = tenant.network.get_router(routed(tenant, made, subnet, public).id)
    gateway_ips = [ip["ip_address"] for ip in router.external_gateway_info["external_fixed_ips"]]
    assert gateway_ips and all(ip.startswith("198.51.100.") for ip in gateway_ips)
    group = tenant.network.create_security_group(name="web-%s" % uuid.uuid4().hex[:6])
    made.append(lambda: tenant.network.delete_security_group(group.id, ignore_missing=True))
    tenant.network.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                              protocol="tcp", port_range_min=22,
                                              port_range_max=22, remote_ip_prefix="10.0.0.0/8")
    rules = list(tenant.network.security_group_rules(security_group_id=group.id))
    assert sorted((r.direction, r.protocol) for r in rules) == [
        ("egress", None), ("egress", None), ("ingress", "tcp")]

    # a server booted from a volume: no disk of its own in `vms`
    volume = tenant.block_storage.create_volume(name="boot", size=1, volume_type="ceph")
    made.append(lambda: tenant.block_storage.delete_volume(volume.id, ignore_missing=True))
    volume = tenant.block_storage.wait_for_status(volume, "available", failures=["error"],
                                                  interval=1, wait=120)
    tenant.block_storage.set_volume_bootable_status(volume, True)
    port = tenant.network.create_port(network_id=net.id, security_group_ids=[group.id],
                                      mac_address="fa:16:3e:00:12:34")
    made.append(lambda: tenant.network.delete_port(port.id, ignore_missing=True))
    f = flavor(admin, made, disk=0)
    vm = server(tenant, made, flavor_id=f.id, networks=[{"port": port.id}],
                block_device_mapping=[{"boot_index": 0, "uuid": volume.id,
                                       "source_type": "volume", "destination_type": "volume"}])
    bound = admin.network.get_port(port.id)
    assert (bound.status, bound.binding_host_id, bound.device_id) == (
        "ACTIVE", openstack_facts["clouds"]["pa1"]["compute"]["host"], vm.id)
    assert bound.mac_address == "fa:16:3e:00:12:34"
    assert tenant.block_storage.get_volume(volume.id).status == "in-use"
    assert vms_images(settings, SOURCE, vm.id) == []


@pytest.mark.parametrize("cloud,side", [("pa1", SOURCE), ("ct1", DESTINATION)])
def test_a_server_from_an_image_has_its_disks_in_vms_as_libvirt_makes_them(
        settings, openstack_facts, clouds, made, cloud, side):
    """Root disk: a copy-on-write clone of the Glance image's snapshot, grown to the flavor;
    ephemeral and swap disks of their sizes; all removed with the server."""
    tenant, admin = clouds["%s-tenant" % cloud], clouds["%s-admin" % cloud]
    content = os.urandom(8 * MiB)
    image = tenant.image.create_image(name="img", disk_format="raw", container_format="bare",
                                      data=io.BytesIO(content))
    made.append(lambda: tenant.image.delete_image(image.id, ignore_missing=True))
    net, _ = tenant_network(tenant, made)
    f = flavor(admin, made, disk=1, ephemeral=1, swap=64)
    vm = server(tenant, made, flavor_id=f.id, image_id=image.id, networks=[{"uuid": net.id}])
    assert vm.status == "ACTIVE"

    disks = vms_images(settings, side, vm.id)
    # the flavor's ephemeral disk is an ephemeral block device (the API adds it): eph0
    assert disks == ["%s_disk" % vm.id, "%s_disk.eph0" % vm.id, "%s_disk.swap" % vm.id]
    rbd = settings.rbd(side)
    root = rbd.run("info", "%s/%s_disk" % (VMS, vm.id))
    glance_pool = openstack_facts["clouds"][cloud]["glance"]["pool"]
    assert (root["parent"]["pool"], root["parent"]["image"], root["parent"]["snapshot"]) == (
        glance_pool, image.id, "snap")
    assert root["size"] == 1 * GiB
    assert head_sha(settings, side, "%s/%s_disk" % (VMS, vm.id), len(content)) == \
        hashlib.sha256(content).hexdigest()
    assert rbd.run("info", "%s/%s_disk.eph0" % (VMS, vm.id))["size"] == 1 * GiB
    assert rbd.run("info", "%s/%s_disk.swap" % (VMS, vm.id))["size"] == 64 * MiB

    tenant.compute.delete_server(vm.id)
    tenant.compute.wait_for_delete(vm, interval=1, wait=120)
    assert eventually(lambda: vms_images(settings, side, vm.id) == [], timeout=30)
    # the image's snapshot has no clone left: Glance can delete the image
    tenant.image.delete_image(image.id)
    assert eventually(lambda: tenant.image.find_image(image.id) is None, timeout=30)
