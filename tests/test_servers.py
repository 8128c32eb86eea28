"""A server as its migration sees it, on the sandbox clouds (real Nova, Neutron, Cinder and the
RBD disks of the sandbox's virt driver): describe_server and plan_server_migration, before and
after the tenant's infrastructure is at the destination."""
import base64
import io
import json
import os
import uuid

import pytest

from runner.actions import LocalActionService, run_python_action
from runner.local import LocalRunner
from ceph_env import write_random
from openstack_env import destination_sha, forget_migration, migrated, source_sha
from test_e2e_workflows import run_until
from lib.rbd_image import META_COPY_OF
from lib.settings import DESTINATION, SOURCE
from test_openstack_compute import (addressed_server, GiB, flavor, head_sha,  # noqa: F401
                                    made, routed,
                                    server, tenant_network)
from test_tenant_infra import public_key


def drop_disk_copies(settings, config, server_id):
    """What sync_server_disks left (until the server procedure's own cleanup exists): the
    sync snapshots on the source root (Nova cannot delete a disk with snapshots) and the
    copy in the destination Glance pool."""
    from lib.copying import remove_when_released
    from lib.diff_sync import drop_snapshots

    for name, pool in (("%s_disk" % server_id, config["pools"]["destination_glance_pool"]),
                       ("%s_disk.eph0" % server_id, "vms"),
                       ("%s_disk.eph1" % server_id, "vms")):
        source = settings.image(SOURCE, "vms", name)
        copy = settings.image(DESTINATION, pool, name)
        if source.find() is not None:
            drop_snapshots(copy, source)
            drop_snapshots(source, source)
        if copy.find() is not None:
            if "snap" in [s["name"] for s in copy.snapshots()]:
                copy.cli.run_text("snap", "unprotect", copy.spec + "@snap")
            copy.cli.run_text("snap", "purge", "--no-progress", copy.spec)
            remove_when_released(copy)


def drop_volume_syncs(settings, workload):
    """The sync snapshots sync_server_disks took of the source volumes (Cinder deletes no
    volume whose image has snapshots)."""
    from lib.diff_sync import drop_snapshots

    for volume in [workload["volume"]] + workload["datas"]:
        source = settings.image(SOURCE, "oscinder", "volume-%s" % volume.id)
        if source.find() is not None:
            drop_snapshots(source, source)


def delete_when_free(conn, volume):
    """A test volume deleted once its server let it go (detaching takes a moment)."""
    conn.block_storage.wait_for_status(volume, "available", failures=["error"], interval=1,
                                       wait=120)
    conn.block_storage.delete_volume(volume.id, ignore_missing=True)


def act(name, config, **params):
    succeeded, result = run_python_action(name, config, params)
    assert succeeded, result
    return result


@pytest.fixture
def workload(clouds, openstack_facts, settings, made):  # noqa: F811
    """In pa1's tenant: a network with a router to the public network, a security group, a
    keypair, a server group, an image-booted server (root and two ephemeral block devices in
    `vms`: Nova's limit of three local devices leaves no room for swap, which the kill test's
    server has; a port with a fixed address and a floating IP, metadata, tags, description,
    user data, config drive) and a volume-backed one (its root and a data volume)."""
    tenant, admin = clouds["pa1-tenant"], clouds["pa1-admin"]
    tag = uuid.uuid4().hex[:6]
    net, subnet = tenant_network(tenant, made, name="srv")
    public = openstack_facts["clouds"]["pa1"]["network"]["public"]["id"]
    routed(tenant, made, subnet, public, name="srv")
    group = tenant.network.create_security_group(name="srv-%s" % tag)
    made.append(lambda: tenant.network.delete_security_group(group.id, ignore_missing=True))
    key = tenant.compute.create_keypair(name="srv-%s" % tag, public_key=public_key())
    made.append(lambda: tenant.compute.delete_keypair(key.name, ignore_missing=True))
    sgroup = tenant.compute.create_server_group(name="srv-%s" % tag, policy="anti-affinity")
    made.append(lambda: tenant.compute.delete_server_group(sgroup.id, ignore_missing=True))
    image = tenant.image.create_image(name="srv-%s" % tag, disk_format="raw",
                                      container_format="bare", os_distro="cirros",
                                      data=io.BytesIO(os.urandom(4 << 20)))
    made.append(lambda: tenant.image.delete_image(image.id, ignore_missing=True))
    f = flavor(admin, made, disk=1, ephemeral=2)
    port = tenant.network.create_port(network_id=net.id, security_group_ids=[group.id],
                                      fixed_ips=[{"subnet_id": subnet.id,
                                                  "ip_address": "10.20.0.50"}],
                                      allowed_address_pairs=[{"ip_address": "10.20.0.99"}])
    made.append(lambda: tenant.network.delete_port(port.id, ignore_missing=True))
    fip = tenant.network.create_ip(floating_network_id=public, port_id=port.id)
    made.append(lambda: tenant.network.delete_ip(fip.id, ignore_missing=True))
    user_data = base64.b64encode(b"#cloud-config\n").decode()
    booted = server(tenant, made, flavor_id=f.id, image_id=image.id,
                    block_device_mapping=[
                        {"boot_index": 0, "uuid": image.id, "source_type": "image",
                         "destination_type": "local", "delete_on_termination": True}] + [
                        {"boot_index": -1, "source_type": "blank", "destination_type": "local",
                         "volume_size": 1, "delete_on_termination": True}] * 2,
                    networks=[{"port": port.id}], key_name=key.name,
                    scheduler_hints={"group": sgroup.id}, metadata={"role": "web"},
                    description="the web server", user_data=user_data, config_drive=True)
    admin.compute.put("/servers/%s/tags/web" % booted.id, microversion="2.26")
    # the volume-backed one: its root cloned from the image, two data volumes (with data),
    # two ports with a security group each, the first with two fixed IPs, an address pair
    # and a floating IP, the keypair, a server group of its own
    volume = tenant.block_storage.create_volume(name="root-%s" % tag, size=1, image_id=image.id,
                                                volume_type="ceph")
    made.append(lambda: tenant.block_storage.delete_volume(volume.id, ignore_missing=True))
    datas = []
    for name in ("data", "data2"):
        v = tenant.block_storage.create_volume(name="%s-%s" % (name, tag), size=1,
                                               volume_type="ceph")
        made.append(lambda v=v: tenant.block_storage.delete_volume(v.id, ignore_missing=True))
        datas.append(v)
    for v in [volume] + datas:
        tenant.block_storage.wait_for_status(v, "available", failures=["error"], interval=1,
                                             wait=120)
    for offset, v in enumerate(datas):
        write_random(settings, SOURCE, "oscinder/volume-%s" % v.id, 2, offset_mib=8 * offset)
    own_groups = []
    for name in ("front", "back"):
        g = tenant.network.create_security_group(name="srv-%s-%s" % (name, tag))
        made.append(lambda g=g: tenant.network.delete_security_group(g.id, ignore_missing=True))
        own_groups.append(g)
    front = tenant.network.create_port(
        network_id=net.id, security_group_ids=[own_groups[0].id],
        fixed_ips=[{"subnet_id": subnet.id, "ip_address": a} for a in ("10.20.0.51",
                                                                       "10.20.0.52")],
        allowed_address_pairs=[{"ip_address": "10.20.0.98"}])
    back = tenant.network.create_port(network_id=net.id, security_group_ids=[own_groups[1].id],
                                      fixed_ips=[{"subnet_id": subnet.id,
                                                  "ip_address": "10.20.0.53"}])
    for p in (front, back):
        made.append(lambda p=p: tenant.network.delete_port(p.id, ignore_missing=True))
    front_fip = tenant.network.create_ip(floating_network_id=public, port_id=front.id,
                                         fixed_ip_address="10.20.0.52")
    made.append(lambda: tenant.network.delete_ip(front_fip.id, ignore_missing=True))
    own_sgroup = tenant.compute.create_server_group(name="srv-own-%s" % tag, policy="affinity")
    made.append(lambda: tenant.compute.delete_server_group(own_sgroup.id, ignore_missing=True))
    small = flavor(admin, made, disk=0)
    from_volume = server(tenant, made, flavor_id=small.id,
                         networks=[{"port": front.id}, {"port": back.id}], key_name=key.name,
                         scheduler_hints={"group": own_sgroup.id},
                         block_device_mapping=[
                             {"boot_index": 0, "uuid": volume.id, "source_type": "volume",
                              "destination_type": "volume"}] + [
                             {"boot_index": -1, "uuid": v.id, "source_type": "volume",
                              "destination_type": "volume"} for v in datas])
    return {"made": made, "booted": booted, "from_volume": from_volume, "port": port, "fip": fip,
            "group": group, "key": key, "sgroup": sgroup, "flavor": f, "net": net,
            "subnet": subnet, "volume": volume, "data": datas[0], "datas": datas,
            "public": public, "user_data": user_data, "image": image,
            "front": front, "back": back, "front_fip": front_fip, "own_groups": own_groups,
            "own_sgroup": own_sgroup}


def test_a_server_described_and_planned_before_and_after_its_tenant_crosses(
        full_config, settings, clouds, openstack_facts, workload):
    LocalActionService.DATASTORE.clear()
    booted = workload["booted"]
    seen = act("describe_server", full_config, server_id=booted.id)
    assert seen["refusals"] == [] and seen["boots_from"] == "image"
    assert [(d["kind"], d["role"], d.get("image")) for d in seen["disks"]] == [
        ("rbd", "root", "%s_disk" % booted.id)] + [
        ("rbd", "ephemeral", "%s_disk.eph%d" % (booted.id, n)) for n in (0, 1)]
    port = seen["ports"][0]
    assert (port["id"], port["mac_address"], port["security_group_ids"]) == (
        workload["port"].id, workload["port"].mac_address, [workload["group"].id])
    assert [ip["ip_address"] for ip in port["fixed_ips"]] == ["10.20.0.50"]
    assert port["allowed_address_pairs"][0]["ip_address"] == "10.20.0.99"
    assert [ip["address"] for ip in port["floating_ips"]] == [
        workload["fip"].floating_ip_address]
    assert (seen["server_group_id"], seen["key_name"], seen["metadata"], seen["tags"],
            seen["description"], seen["user_data"], seen["config_drive"],
            seen["power_state"]) == (workload["sgroup"].id, workload["key"].name,
                                     {"role": "web"}, ["web"], "the web server",
                                     workload["user_data"], True, "running")
    assert seen["flavor"]["ephemeral"] == 2

    volume_backed = act("describe_server", full_config,
                        server_id=workload["from_volume"].id)
    assert volume_backed["boots_from"] == "volume" and volume_backed["refusals"] == []
    assert [(d["kind"], d["role"], d["volume_id"]) for d in volume_backed["disks"]] == [
        ("volume", "root", workload["volume"].id)] + [
        ("volume", "data", v.id) for v in workload["datas"]]
    assert volume_backed["disks"][0]["image_metadata"]["image_id"] == workload["image"].id
    assert [(p["id"], p["security_group_ids"], [ip["ip_address"] for ip in p["fixed_ips"]],
             [ip["address"] for ip in p["floating_ips"]])
            for p in volume_backed["ports"]] == [
        (workload["front"].id, [workload["own_groups"][0].id], ["10.20.0.51", "10.20.0.52"],
         [workload["front_fip"].floating_ip_address]),
        (workload["back"].id, [workload["own_groups"][1].id], ["10.20.0.53"], [])]
    assert (volume_backed["server_group_id"], volume_backed["key_name"]) == (
        workload["own_sgroup"].id, workload["key"].name)

    # its disks cross while it runs: the root into ct1's Glance pool, its ephemeral disk (as
    # asked) into ct1's Nova pool, swap never, checked in full; what the guest writes after
    # crosses in the last round, its delta checked
    root = "%s_disk" % booted.id
    ephs = ["%s_disk.eph%d" % (booted.id, n) for n in (0, 1)]
    workload["made"].append(lambda: drop_disk_copies(settings, full_config, booted.id))
    for n, eph in enumerate(ephs):
        write_random(settings, SOURCE, "vms/" + eph, 2, offset_mib=4 + n)
    presynced = act("sync_server_disks", full_config, server_id=booted.id, ephemeral=True)
    assert [(d["role"], d["destination"]["pool"], d["verified"]) for d in presynced["disks"]] == [
        ("root", full_config["pools"]["destination_glance_pool"], True),
        ("ephemeral", "vms", True), ("ephemeral", "vms", True)]
    write_random(settings, SOURCE, "vms/" + root, 2, offset_mib=100)
    for eph in ephs:
        write_random(settings, SOURCE, "vms/" + eph, 2, offset_mib=20)
    final = act("sync_server_disks", full_config, server_id=booted.id, final=True,
                ephemeral=True)
    disk = final["disks"][0]
    assert disk["verified"] is True and 2 << 20 <= disk["bytes"] <= 16 << 20, disk
    assert [(d["verified"], d["bytes"] >= 2 << 20) for d in final["disks"][1:]] == [
        (True, True)] * 2
    copy = "%s/%s@%s" % (full_config["pools"]["destination_glance_pool"], root,
                         disk["snapshot"])
    assert head_sha(settings, DESTINATION, copy, GiB) == head_sha(
        settings, SOURCE, "vms/%s@%s" % (root, disk["snapshot"]), GiB)

    # before the tenant's infrastructure is at ct1, the plan says what is missing
    early = act("plan_server_migration", full_config, server_id=booted.id)
    assert early["ok"] is False
    refs = next(c for c in early["checks"]
                if c["check"] == "its references are at the destination")
    assert not refs["ok"] and "network %s is not at the destination" % workload["net"].id \
        in refs["detail"]

    dest_public = openstack_facts["clouds"]["ct1"]["network"]["public"]["id"]
    translation = {"external_networks": {workload["public"]: dest_public}}
    project = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
    exported = act("export_tenant", full_config, project="tenant")["document"]
    try:
        done = act("import_tenant", full_config, export=exported, translation=translation,
                   destination_project=project,
                   kinds=["project", "user", "keypair", "flavor", "network", "subnet",
                          "router", "security_group", "security_group_rule",
                          "server_group"])
        assert done["summary"]["conflict"] == 0, done["text"]
        plan = act("plan_server_migration", full_config, server_id=booted.id, ephemeral=True)
        assert plan["ok"] is True, plan["text"]
        assert ["ephemeral disk vms/%s is carried" % e in w
                for e, w in zip(ephs, plan["warnings"])] == [True, True], plan["warnings"]
        dest = plan["destination"]
        ct1 = clouds["ct1-admin"]
        assert dest["project_id"] == project
        assert ct1.compute.get_flavor(dest["flavor_id"]).name == workload["flavor"].name
        assert ct1.network.get_network(dest["ports"][0]["network_id"]).name == \
            workload["net"].name
        assert dest["ports"][0]["floating_ips"][0]["network_id"] == dest_public
        assert dest["keypair"].endswith(":" + workload["key"].name)
        assert ct1.compute.get_server_group(dest["server_group_id"]).name == \
            workload["sgroup"].name
        assert plan["needs"] == {"cores": 1, "ram": 64, "instances": 1, "volumes": 0,
                                 "gigabytes": 0, "ports": 1}

        # the ports come before the cutover: the source's MAC, address, pairs and groups
        dry = act("prepare_ports", full_config, server_id=booted.id, dry_run=True)
        assert [p["outcome"] for p in dry["ports"]] == ["created"]
        prepared = act("prepare_ports", full_config, server_id=booted.id)
        twin = ct1.network.get_port(prepared["ports"][0]["destination_id"])
        assert (twin.mac_address, [ip["ip_address"] for ip in twin.fixed_ips],
                twin.project_id, twin.device_id) == (
            workload["port"].mac_address, ["10.20.0.50"], project, "")
        assert [p["ip_address"] for p in twin.allowed_address_pairs] == ["10.20.0.99"]
        assert twin.security_group_ids == dest["ports"][0]["security_group_ids"]
        # its floating IP on ct1's public network, on the twin (ct1's external subnet does
        # not hold pa1's address: ct1 picks one)
        assert [f["outcome"] for f in dry["floating_ips"]] == ["created"]
        fip_twin = ct1.network.get_ip(prepared["floating_ips"][0]["destination_id"])
        assert (fip_twin.port_id, fip_twin.fixed_ip_address, fip_twin.floating_network_id,
                fip_twin.project_id) == (twin.id, "10.20.0.50", dest_public, project)
        assert fip_twin.floating_ip_address.startswith("203.0.113.")
        again = act("prepare_ports", full_config, server_id=booted.id)
        assert again["changed"] is False and again["summary"]["unchanged"] == 2

        # the checked root becomes the server's own image at ct1, served from the Glance pool
        registered = act("register_server_image", full_config, server_id=booted.id)
        image = ct1.image.get_image(registered["image_id"])
        assert (image.status, image.owner, image.visibility) == ("active", project, "private")
        assert image.direct_url.endswith("/%s/%s/snap" % (
            full_config["pools"]["destination_glance_pool"], root))
        assert image.os_distro == "cirros" and image.min_disk == 1
        assert act("register_server_image", full_config,
                   server_id=booted.id)["changed"] is False
        workload["made"].append(lambda: ct1.image.delete_image(image.id, ignore_missing=True))

        # the server itself at ct1, on what crossed: booted from its own image (a clone of
        # the copy), on the port made before, with everything the source server says
        dry = act("create_server", full_config, server_id=booted.id, dry_run=True)
        assert (dry["outcome"], dry["missing"], dry["request"]["image_id"]) == (
            "created", [], image.id), dry
        made_booted = act("create_server", full_config, server_id=booted.id, ephemeral=True)
        twin_server = ct1.compute.get_server(made_booted["server_id"])
        # its ephemeral disks (the same block devices, in order) are the source's, checked,
        # each in place of the blank one Nova gave it (set aside, then removed); the copies'
        # names are gone, their records stay
        twin_ephs = ["%s_disk.eph%d" % (twin_server.id, n) for n in (0, 1)]
        assert made_booted["ephemeral"]["disks"] == ["vms/" + e for e in twin_ephs], made_booted
        at_ct1 = settings.rbd(DESTINATION).run("ls", "vms") or []
        assert [n for n in at_ct1 if n.startswith(twin_server.id)] == [
            "%s_disk" % twin_server.id] + twin_ephs, at_ct1
        for eph, twin_eph, synced in zip(ephs, twin_ephs, final["disks"][1:]):
            assert head_sha(settings, DESTINATION, "vms/" + twin_eph, 32 << 20) == head_sha(
                settings, SOURCE, "vms/%s@%s" % (eph, synced["snapshot"]), 32 << 20)
            placed = settings.image(DESTINATION, "vms", twin_eph)
            assert eph not in at_ct1 and placed.snapshots() == [] and placed.recorded(
                META_COPY_OF)["source"].endswith("vms/" + eph)
        mark = "ceph_migrate_source_id=%s" % booted.id
        assert (twin_server.status, twin_server.project_id, twin_server.image["id"],
                twin_server.key_name, twin_server.metadata, twin_server.description,
                sorted(twin_server.tags), twin_server.user_data,
                bool(twin_server.has_config_drive)) == (
            "ACTIVE", project, image.id, workload["key"].name, {"role": "web"},
            "the web server", sorted(["web", mark]), workload["user_data"], True)
        assert twin_server.flavor["original_name"] == workload["flavor"].name
        assert [p.id for p in ct1.network.ports(device_id=twin_server.id)] == [twin.id]
        assert twin_server.id in ct1.compute.get_server_group(
            dest["server_group_id"]).member_ids
        # its root disk is a copy-on-write clone of the copy Glance serves
        clone = settings.rbd(DESTINATION).run("info", "vms/%s_disk" % twin_server.id)
        assert clone["parent"]["image"] == root and clone["parent"]["snapshot"] == "snap"
        # the keypair was lent to the pack's account for the call only
        assert ct1.compute.find_keypair(workload["key"].name, ignore_missing=True) is None
        again = act("create_server", full_config, server_id=booted.id, ephemeral=True)
        assert (again["changed"], again["outcome"], again["server_id"],
                again["ephemeral"]["moved"]) == (False, "unchanged", twin_server.id, [])
        assert ct1.compute.get_server(twin_server.id).status == "ACTIVE"

        # the source side of the cutover: stopped (it ran: tagged so), released once its
        # counterpart stands (locked, tagged with where it went), restored by a rollback
        refused, said = run_python_action("release_source_server", full_config,
                                          {"server_id": workload["from_volume"].id})
        assert not refused and "no counterpart" in str(said), said
        pa1 = clouds["pa1-admin"]
        workload["made"].append(lambda: pa1.compute.unlock_server(booted.id))
        stopped = act("stop_source_server", full_config, server_id=booted.id)
        assert (stopped["changed"], stopped["was_running"], stopped["status"]) == (
            True, True, "SHUTOFF")
        assert act("stop_source_server", full_config, server_id=booted.id)["was_running"]
        act("release_source_server", full_config, server_id=booted.id)
        released = pa1.compute.get_server(booted.id)
        assert (released.is_locked, released.locked_reason) == (
            True, "migrated by ceph_migrate to %s" % twin_server.id)
        assert "ceph_migrate_moved_to=%s" % twin_server.id in released.tags
        assert act("release_source_server", full_config,
                   server_id=booted.id)["changed"] is False
        restored = act("restore_source_server", full_config, server_id=booted.id)
        assert restored["done"] == ["unlocked", "untagged", "started"], restored
        back = pa1.compute.get_server(booted.id)
        assert (back.status, back.is_locked, back.tags) == ("ACTIVE", False, ["web"])

        # the volume-backed server's volumes: copied, checked, managed in the tenant's
        # project at ct1, the root bootable with its image metadata, the content equal
        from_volume = workload["from_volume"].id
        workload["made"].append(lambda: drop_volume_syncs(settings, workload))
        act("sync_server_disks", full_config, server_id=from_volume)
        # the guest writes to its second data volume between the pre-sync and the last round
        write_random(settings, SOURCE, "oscinder/volume-%s" % workload["datas"][1].id, 3,
                     offset_mib=40)
        act("sync_server_disks", full_config, server_id=from_volume, final=True)
        managed = act("manage_server_volumes", full_config, server_id=from_volume)
        for volume in managed["volumes"]:
            workload["made"].append(lambda v=volume["volume_id"]: ct1.block_storage.delete_volume(
                v, ignore_missing=True))
        by_role = {v["role"]: v for v in managed["volumes"]}
        root_volume = ct1.block_storage.get_volume(by_role["root"]["volume_id"])
        assert (root_volume.project_id, root_volume.is_bootable, root_volume.status) == (
            project, True, "available")
        assert root_volume.volume_image_metadata["image_id"] == workload["image"].id
        assert root_volume.volume_image_metadata.get("os_distro") == "cirros"
        assert [v["source_volume_id"] for v in managed["volumes"]] == [
            workload["volume"].id] + [v.id for v in workload["datas"]]
        # every disk equal to its source where anything was written (the sync checked them
        # whole), the writes after the pre-sync included
        for v in managed["volumes"]:
            assert head_sha(settings, DESTINATION, v["rbd_image"], 64 << 20) == head_sha(
                settings, SOURCE, "oscinder/volume-%s" % v["source_volume_id"], 64 << 20), v
        again = act("manage_server_volumes", full_config, server_id=from_volume)
        assert again["changed"] is False
        # the window run again after its manage (a run killed before the create): the
        # copies Cinder took (renamed) are not copied again, nor left twice in the pool
        rerun = act("sync_server_disks", full_config, server_id=from_volume, final=True)
        assert [(d["bytes"], d["managed"]) for d in rerun["disks"]] == [
            (0, v["volume_id"]) for v in managed["volumes"]], rerun
        in_pool = settings.rbd(DESTINATION).run("ls", settings.pools.destination_cinder) or []
        assert not [v for v in managed["volumes"]
                    if "volume-%s" % v["source_volume_id"] in in_pool], in_pool

        # the volume-backed server at ct1, stopped as asked: its managed volumes in the
        # source's order, the root first, with their delete-on-termination
        ports = act("prepare_ports", full_config, server_id=from_volume)
        twins = [ct1.network.get_port(p["destination_id"]) for p in ports["ports"]]
        assert [(t.mac_address, [ip["ip_address"] for ip in t.fixed_ips],
                 [a["ip_address"] for a in t.allowed_address_pairs]) for t in twins] == [
            (workload["front"].mac_address, ["10.20.0.51", "10.20.0.52"], ["10.20.0.98"]),
            (workload["back"].mac_address, ["10.20.0.53"], [])]
        [front_fip] = [ct1.network.get_ip(f["destination_id"]) for f in ports["floating_ips"]]
        assert (front_fip.port_id, front_fip.fixed_ip_address) == (twins[0].id, "10.20.0.52")
        planned = act("create_server", full_config, server_id=from_volume, power_on=False,
                      dry_run=True)
        assert planned["missing"] == [] and "image_id" not in planned["request"], planned
        assert [(b["uuid"], b["boot_index"], b["delete_on_termination"])
                for b in planned["request"]["block_device_mapping"]] == [
            (v["volume_id"], 0 if v["role"] == "root" else -1, False)
            for v in managed["volumes"]]
        made_volume = act("create_server", full_config, server_id=from_volume, power_on=False)
        twin_volume = ct1.compute.get_server(made_volume["server_id"])
        assert (twin_volume.status, twin_volume.project_id) == ("SHUTOFF", project)
        assert not (twin_volume.image or {}).get("id")
        attached = sorted(ct1.compute.volume_attachments(twin_volume), key=lambda a: a.device)
        assert [a.volume_id for a in attached] == [v["volume_id"] for v in managed["volumes"]]
        assert twin_volume.id in ct1.compute.get_server_group(
            ct1.compute.find_server_group(workload["own_sgroup"].name,
                                          all_projects=True).id).member_ids
        assert attached[0].device == twin_volume.root_device_name

        # compare_tenant, field by field through the mapping: the image-booted twin equals its
        # source in every field carried; the volume-backed one differs only in its power
        # state (made stopped above while its source runs)
        compared = act("compare_tenant", full_config, export=exported)
        servers = [d for d in compared["differences"] if d["kind"] == "server"]
        assert [(d["source_id"], d["param"], d["source"], d["destination"])
                for d in servers] == [(from_volume, "power_state", "running", "shutdown")], \
            json.dumps(servers, indent=1)
        assert sorted(s["destination_id"] for s in compared["servers"]["migrated"]) == sorted(
            [twin_server.id, twin_volume.id]) and compared["servers"]["not_migrated"] == []

        # the server procedure's undo: the counterpart, its floating IP and port, its root
        # image and copy at ct1; the source as it was, without the pack's sync snapshots
        # a stranger's server, port and floating IP in the same project at ct1 (untagged,
        # named as the pack's): the rollback never takes them
        tenant_ct1 = clouds["ct1-tenant"]
        stranger_port = tenant_ct1.network.create_port(network_id=twin.network_id,
                                                       name=twin.name)
        workload["made"].append(lambda: tenant_ct1.network.delete_port(
            stranger_port.id, ignore_missing=True))
        stranger_fip = tenant_ct1.network.create_ip(floating_network_id=dest_public)
        workload["made"].append(lambda: tenant_ct1.network.delete_ip(
            stranger_fip.id, ignore_missing=True))
        own_image = tenant_ct1.image.create_image(
            name="stranger", disk_format="raw", container_format="bare",
            data=io.BytesIO(os.urandom(1 << 20)))
        workload["made"].append(lambda: tenant_ct1.image.delete_image(
            own_image.id, ignore_missing=True))
        stranger = server(tenant_ct1, workload["made"], flavor_id=dest["flavor_id"],
                          image_id=own_image.id, networks=[{"port": stranger_port.id}])
        would = act("rollback_server", full_config, server_id=booted.id, dry_run=True)
        assert would["changed"] is False and would["undone"], would
        assert ct1.compute.get_server(twin_server.id).status == "ACTIVE"
        undone = act("rollback_server", full_config, server_id=booted.id)
        assert undone["kept"] == [], undone
        assert ct1.compute.find_server(twin_server.id, ignore_missing=True) is None
        assert ct1.network.find_ip(fip_twin.id, ignore_missing=True) is None
        assert ct1.network.find_port(twin.id, ignore_missing=True) is None
        assert ct1.image.find_image(image.id, ignore_missing=True) is None
        glance_pool = full_config["pools"]["destination_glance_pool"]
        assert root not in (settings.rbd(DESTINATION).run("ls", glance_pool) or [])
        assert settings.rbd(SOURCE).run("snap", "ls", "vms/" + root) == []
        assert [settings.rbd(SOURCE).run("snap", "ls", "vms/" + e) for e in ephs] == [[], []]
        assert not [n for n in settings.rbd(DESTINATION).run("ls", "vms") or []
                    if n.startswith(twin_server.id)]
        assert pa1.compute.get_server(booted.id).status == "ACTIVE"
        assert act("rollback_server", full_config, server_id=booted.id)["changed"] is False
        assert ct1.compute.get_server(stranger.id).status == "ACTIVE"
        assert ct1.network.get_port(stranger_port.id).device_id == stranger.id
        assert ct1.network.get_ip(stranger_fip.id).id == stranger_fip.id
        # (gone again before rollback_tenant, which would keep the subnet they use)
        tenant_ct1.compute.delete_server(stranger.id)
        tenant_ct1.compute.wait_for_delete(stranger, interval=1, wait=120)
        tenant_ct1.network.delete_port(stranger_port.id)
        tenant_ct1.network.delete_ip(stranger_fip.id)

        # rollback_tenant takes the volume-backed server it made (tagged) before its port;
        # the volumes it was made on stay (the volume procedure's rollback takes those)
        undone = act("rollback_tenant", full_config,
                     source_project_id=exported["project"]["id"])
        assert [(r["kind"], r["outcome"]) for r in undone["results"]
                if r["kind"] in ("server", "floating_ip", "port")] == [
            ("server", "removed"), ("floating_ip", "removed"), ("port", "removed"),
            ("port", "removed")], undone["results"]
        assert ct1.compute.find_server(twin_volume.id, ignore_missing=True) is None
        assert ct1.block_storage.get_volume(by_role["root"]["volume_id"]).status == "available"
    finally:
        run_python_action("rollback_tenant", full_config,
                          {"source_project_id": exported["project"]["id"]})


def test_a_whole_tenant_by_a_run_killed_after_each_step_then_finished_once(
        settings, full_config, clouds, openstack_facts, made):  # noqa: F811
    """migrate_tenant as a user types it (python -m runner), on a tenant of one image-booted server
    with a data volume attached, a floating IP, and one detached volume, its root landing as a
    boot volume (root_target volume; the image-booted way runs in the other tests and in
    StackStorm's): the runner (and whatever it had started) killed right after the import, after
    the server's ports and pre-sync, after its cutover, after its release (before its cleanup);
    each re-run goes on from there, and the last finishes: exactly one counterpart, booted from
    its root's volume, one port, one floating IP, each disk with the source's content (the
    writes made after the pre-sync included; its ephemeral disk carried, ephemeral=true), each
    volume managed once, compare_tenant clean, the report saying what the last run found. Then
    the disks are never copied again (the counterpart stands), and the rollbacks take it all,
    the root's volume too."""
    tenant, admin, ct1 = clouds["pa1-tenant"], clouds["pa1-admin"], clouds["ct1-admin"]
    volumes = {}      # made first: undone after the server that holds one
    for role in ("data", "detached"):
        volumes[role] = tenant.block_storage.create_volume(name="whole-" + role, size=1,
                                                           volume_type="ceph")
        made.append(lambda v=volumes[role]: delete_when_free(tenant, v))
        tenant.block_storage.wait_for_status(volumes[role], "available", failures=["error"],
                                             interval=1, wait=120)
        write_random(settings, SOURCE, "%s/volume-%s" % (settings.pools.mirrored_cinder,
                                                         volumes[role].id), 2)
    parts = addressed_server(tenant, admin, made, openstack_facts, "whole", "10.20.0.70",
                             ephemeral=1, swap=64)
    vm, port, public = parts["server"], parts["port"], parts["public"]
    tenant.compute.create_volume_attachment(vm, volume_id=volumes["data"].id)
    tenant.block_storage.wait_for_status(volumes["data"], "in-use", failures=["error"],
                                         interval=1, wait=120)
    listed = act("tenant_workload", full_config, project="tenant")
    assert (listed["server_ids"], listed["volume_ids"]) == ([vm.id], [volumes["detached"].id]), \
        "the sandbox tenant holds more than this test made: %s" % listed
    translation = {"external_networks": {
        public: openstack_facts["clouds"]["ct1"]["network"]["public"]["id"]}}
    args = ["project=tenant", "destination_project=tenant", "concurrency=1",
            "root_target=volume", "ephemeral=true",
            "translation=" + json.dumps(translation)]
    twins = lambda: list(ct1.compute.servers(all_projects=True,  # noqa: E731
                                             tags="ceph_migrate_source_id=" + vm.id))
    try:
        for step in ("import", r"presync(?=\s+ceph_migrate\.sync_server_disks)", "cutover",
                     r"release(?=\s+ceph_migrate\.release_source_server)"):
            run_until(step, "ceph_migrate.migrate_tenant", *args)
            assert len(twins()) <= 1, step
            if step.startswith("presync"):     # the guest writes after the pre-sync
                for spec in ("vms/%s_disk" % vm.id, "vms/%s_disk.eph0" % vm.id,
                             "%s/volume-%s" % (settings.pools.mirrored_cinder,
                                               volumes["data"].id)):
                    write_random(settings, SOURCE, spec, 3, offset_mib=5)
        asked = []
        result = LocalRunner(full_config, answer=lambda gate, params: asked.append(gate) or {
            "approved": True}, delay_scale=0.2).run(
            "ceph_migrate.migrate_tenant", project="tenant", destination_project="tenant",
            concurrency=1, root_target="volume", ephemeral=True, translation=translation)
        out = result.output
        assert result.status == "succeeded", json.dumps(out, indent=1, default=str)
        assert out["outcome"] == ("tenant migrated and compared clean: 1 server(s), 1 detached "
                                  "volume(s)"), out
        # the server was cut over and released by the killed runs: this one only cleaned it
        assert settings.rbd(SOURCE).run("snap", "ls", "vms/%s_disk" % vm.id) == []
        assert "approve_copy" not in asked and "approve_cleanup" in asked, asked
        [twin] = twins()
        assert twin.status == "ACTIVE"
        [twin_port] = ct1.network.ports(device_id=twin.id)
        assert (twin_port.mac_address, twin_port.fixed_ips[0]["ip_address"]) == (
            port.mac_address, "10.20.0.70")
        assert len(list(ct1.network.ips(port_id=twin_port.id))) == 1
        assert len(list(ct1.network.ports(mac_address=port.mac_address))) == 1
        for volume in volumes.values():
            [copy] = migrated(clouds, volume.id)
            assert destination_sha(settings, settings.pools.destination_cinder,
                                   "volume-" + copy.id) == source_sha(settings, volume.id)
        # it boots from its root's volume (bootable, the pack's: tagged with the disk, made
        # of the copy), its data volume after it
        [root] = [v for v in ct1.block_storage.volumes(all_projects=True) if (
            v.metadata or {}).get("ceph_migrate_source_id") == "%s_disk" % vm.id]
        assert (twin.image or {}).get("id") in (None, "") and root.is_bootable
        attached = sorted(ct1.compute.volume_attachments(twin), key=lambda a: a.device)
        assert [a.volume_id for a in attached] == [root.id, migrated(
            clouds, volumes["data"].id)[0].id]
        assert attached[0].device == twin.root_device_name
        # the root as the stopped source has it, the writes after the pre-sync included
        assert head_sha(settings, DESTINATION, "%s/volume-%s" % (
            settings.pools.destination_cinder, root.id), 64 << 20) == head_sha(
            settings, SOURCE, "vms/%s_disk" % vm.id, 64 << 20)
        # its swap never crossed (its own, blank, from the flavor); its ephemeral disk, the
        # source's in place of its blank one
        at_ct1 = settings.rbd(DESTINATION).run("ls", "vms") or []
        assert "%s_disk.swap" % twin.id in at_ct1 and "%s_disk.swap" % vm.id not in at_ct1
        assert head_sha(settings, DESTINATION, "vms/%s_disk.eph0" % twin.id, 16 << 20) == \
            head_sha(settings, SOURCE, "vms/%s_disk.eph0" % vm.id, 16 << 20)
        source = admin.compute.get_server(vm.id)
        assert (source.status, source.is_locked) == ("SHUTOFF", True)
        assert out["report"].startswith("infrastructure: "), out["report"]
        # its window was in the killed run: this one says what it found
        assert "server %s: migrated as %s after its cutover (an earlier run)" % (
            vm.id, twin.id) in out["report"], out["report"]
        # the counterpart stands: its disks are never written by another round
        refused, said = run_python_action("sync_server_disks", full_config,
                                          {"server_id": vm.id})
        assert not refused and "already stands at the destination" in str(said), said
        # a tenant's own volume at ct1 carrying the root's tag (a hint anyone can write):
        # no copy record of the pack's proves it, the rollbacks below leave it
        tenant_ct1 = clouds["ct1-tenant"]
        stranger = tenant_ct1.block_storage.create_volume(
            name="stranger", size=1, metadata={"ceph_migrate_source_id": "%s_disk" % vm.id})
        made.append(lambda: tenant_ct1.block_storage.delete_volume(stranger.id,
                                                                   ignore_missing=True))
        tenant_ct1.block_storage.wait_for_status(stranger, "available", failures=["error"],
                                                 interval=1, wait=120)
    finally:
        run_python_action("rollback_server", full_config, {"server_id": vm.id})
        forget_migration(settings, full_config, clouds, volumes["detached"].id)
        run_python_action("rollback_tenant", full_config,
                          {"source_project_id": vm.project_id})
    assert twins() == [] and admin.compute.get_server(vm.id).status == "ACTIVE"
    assert ct1.block_storage.find_volume(root.id, ignore_missing=True,
                                         all_projects=True) is None
    assert ct1.block_storage.get_volume(stranger.id).status == "available"
