"""What the server migration reads of a server (lib.servers): which RBD images are its disks,
and the refusals said before anything changes. The description itself is read from the real
sandbox clouds in tests/test_servers.py."""
import pytest

from lib.errors import RefusedError
from lib.servers import disk_summary, rbd_role, refusals

UUID = "0f2a4c1e-1111-4222-8333-944445555666"


def test_a_servers_rbd_disks_are_named_as_libvirt_names_them():
    roles = {name: rbd_role(UUID, name) for name in (
        UUID + "_disk", UUID + "_disk.eph0", UUID + "_disk.eph12", UUID + "_disk.local",
        UUID + "_disk.swap", UUID + "_disk.config", UUID + "_disk.ephx", UUID,
        "other_disk", UUID + "_disk.swap.bak")}
    assert roles == {
        UUID + "_disk": "root", UUID + "_disk.eph0": "ephemeral",
        UUID + "_disk.eph12": "ephemeral", UUID + "_disk.local": "ephemeral",
        UUID + "_disk.swap": "swap", UUID + "_disk.config": None, UUID + "_disk.ephx": None,
        UUID: None, "other_disk": None, UUID + "_disk.swap.bak": None}


def movable(**changes):
    server = {"status": "ACTIVE", "flavor": {"extra_specs": {"hw:cpu_policy": "shared"}},
              "boots_from": "volume", "ports": [{"id": "p1", "binding_vnic_type": "normal"}],
              "disks": [{"kind": "volume", "role": "root", "volume_id": "v1",
                         "encrypted": False, "multiattach": False, "size_gib": 1},
                        {"kind": "rbd", "role": "swap", "pool": "vms",
                         "image": UUID + "_disk.swap"}]}
    server.update(changes)
    return server


def test_a_plain_server_is_movable_and_each_refusal_says_why():
    assert refusals(movable()) == []
    assert refusals(movable(status="SHUTOFF")) == []
    assert refusals(movable(status="SHELVED_OFFLOADED")) == [
        "the server is SHELVED_OFFLOADED: bring it to ACTIVE or SHUTOFF first"]
    assert refusals(movable(flavor={"extra_specs": {"hw:tpm_version": "2.0",
                                                    "hw:tpm_model": "tpm-crb"}})) == [
        "its flavor gives it a vTPM (hw:tpm_model, hw:tpm_version), whose secret stays in "
        "the source cloud's key manager"]
    assert refusals(movable(flavor={"extra_specs": {"pci_passthrough:alias": "gpu:1"}})) == [
        "its flavor passes PCI devices through (pci_passthrough:alias)"]
    assert refusals(movable(ports=[{"id": "p9", "binding_vnic_type": "direct"}])) == [
        "port p9 is direct (SR-IOV or similar: tied to the host's hardware)"]
    disk = dict(movable()["disks"][0], encrypted=True, multiattach=True)
    assert refusals(movable(disks=[disk])) == [
        "volume v1 is encrypted (its key stays in the source cloud's key manager)",
        "volume v1 is multiattach"]
    assert refusals(movable(boots_from="image")) == [
        "its root disk is not in the Nova pool: file-backed (or another backend's) disks "
        "cannot be carried Ceph to Ceph"]
    assert refusals(movable(disks=[])) == [
        "it boots from a volume the pack cannot find among its attachments"]


def test_the_disks_read_as_an_operator_reads_them():
    assert disk_summary(movable()["disks"]) == (
        "root volume 1 GiB, swap rbd vms/%s_disk.swap" % UUID)


def test_each_reference_goes_through_the_mapping_and_what_is_missing_is_said():
    from lib.server_plan import destination_refs
    from lib.tenant import Entry, TenantMap

    tmap = TenantMap()
    for kind, sid, did in (("project", "p-src", "p-dst"), ("flavor", "f-src", "f-dst"),
                           ("network", "n-src", "n-dst"), ("subnet", "s-src", "s-dst"),
                           ("security_group", "g-src", "g-dst"),
                           ("keypair", "u-src:laptop", "u-dst:laptop")):
        tmap.record(kind, sid, Entry(did, "created", "x", made=True))
    tmap.translation["external_networks"] = {"pub-src": "pub-dst"}
    tmap.translation["availability_zones"] = {"az-a": "nova"}
    server = {"project_id": "p-src", "user_id": "u-src", "key_name": "laptop",
              "availability_zone": "az-a", "server_group_id": None, "ports": [{
                  "id": "port-1", "mac_address": "fa:16:3e:00:00:01", "network_id": "n-src",
                  "fixed_ips": [{"subnet_id": "s-src", "ip_address": "10.0.0.5"}],
                  "security_group_ids": ["g-src"],
                  "allowed_address_pairs": [{"ip_address": "10.0.0.99"}],
                  "is_port_security_enabled": True,
                  "floating_ips": [{"id": "fip", "address": "198.51.100.7",
                                    "network_id": "pub-src", "fixed_address": "10.0.0.5"}]}]}
    refs, missing = destination_refs(server, tmap, "f-src")
    assert missing == []
    assert refs == {
        "project_id": "p-dst", "flavor_id": "f-dst", "keypair": "u-dst:laptop",
        "server_group_id": None, "availability_zone": "nova", "ports": [{
            "source_id": "port-1", "name": "", "description": "", "tags": [],
            "mac_address": "fa:16:3e:00:00:01", "network_id": "n-dst",
            "fixed_ips": [{"ip_address": "10.0.0.5", "subnet_id": "s-dst"}],
            "security_group_ids": ["g-dst"],
            "allowed_address_pairs": [{"ip_address": "10.0.0.99"}],
            "is_port_security_enabled": True,
            "floating_ips": [{"id": "fip", "address": "198.51.100.7", "network_id": "pub-dst",
                              "fixed_address": "10.0.0.5"}]}]}

    tmap.translation["flavors"] = {"f-other": "f-given"}
    refs, _ = destination_refs(server, tmap, "f-other")
    assert refs["flavor_id"] == "f-given"          # the operator's translation
    tmap.forget("network", "n-src")
    tmap.translation["external_networks"] = {}
    _, missing = destination_refs(dict(server, server_group_id="sg-src"), tmap, "f-src")
    assert missing == [
        "network n-src is not at the destination: migrate the tenant's infrastructure first "
        "(migrate_tenant_infra)",
        "external network pub-src has no counterpart (translation external_networks)",
        "server group sg-src is not at the destination: migrate the tenant's infrastructure "
        "first (migrate_tenant_infra)"]


def test_each_disk_goes_where_the_destination_serves_it():
    from types import SimpleNamespace

    from lib.server_plan import disk_pairs

    pools = SimpleNamespace(mirrored_cinder="oscinder", destination_cinder="cinder-ct1",
                            destination_glance="glance-ct1", mirrored_nova="vms")
    server = {"disks": [
        {"kind": "volume", "role": "data", "volume_id": "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"},
        {"kind": "rbd", "role": "root", "pool": "vms", "image": UUID + "_disk"},
        {"kind": "rbd", "role": "ephemeral", "pool": "vms", "image": UUID + "_disk.eph0"},
        {"kind": "rbd", "role": "swap", "pool": "vms", "image": UUID + "_disk.swap"}]}
    assert [(p["role"], p["source"]["pool"], p["destination"]["pool"], p["destination"]["image"])
            for p in disk_pairs(server, pools)] == [
        ("data", "oscinder", "cinder-ct1", "volume-0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"),
        ("root", "vms", "glance-ct1", UUID + "_disk")]
    assert [p["role"] for p in disk_pairs(server, pools, ephemeral=True)] == [
        "data", "root", "ephemeral"]                   # swap never
    # root_target volume: the root's copy lands in the Cinder pool, to be managed there
    assert [(p["role"], p["as"], p["destination"]["pool"])
            for p in disk_pairs(server, pools, ephemeral=True, root_target="volume")] == [
        ("data", "volume", "cinder-ct1"), ("root", "volume", "cinder-ct1"),
        ("ephemeral", "disk", "vms")]      # the destination Nova's pool, to become its own
    with pytest.raises(RefusedError, match="root_target is image or volume"):
        disk_pairs(server, pools, root_target="glance")


def test_a_floating_address_is_asked_for_again_only_where_the_destination_holds_it():
    from lib.neutron import same_address
    assert same_address("203.0.113.7", ["198.51.100.0/24", "203.0.113.0/24"]) == "203.0.113.7"
    assert same_address("198.51.100.7", ["203.0.113.0/24"]) is None
    assert same_address("2001:db8::5", ["2001:db8::/64"]) == "2001:db8::5"
    assert same_address("2001:db8::5", ["203.0.113.0/24"]) is None
    assert same_address(None, ["203.0.113.0/24"]) is None


def test_a_counterpart_equals_its_source_through_the_mapping_and_differences_are_named():
    """compare_tenant's rule for a server (lib.server_compare): the source described as the
    pack left it (stopped, tagged) against its counterpart in destination ids; the pack's
    own tags and flavor mark are not differences, a changed field is."""
    import copy

    from lib.server_compare import expected, facts
    from lib.server_plan import destination_refs
    from lib.tenant import Entry, TenantMap

    tmap = TenantMap()
    for kind, sid, did in (("project", "p-src", "p-dst"), ("network", "n-src", "n-dst"),
                           ("subnet", "s-src", "s-dst"), ("security_group", "g-src", "g-dst"),
                           ("server_group", "sg-src", "sg-dst")):
        tmap.record(kind, sid, Entry(did, "created", "x", made=True))
    tmap.translation["volume_types"] = {"ceph-old": "ceph"}
    port = {"id": "port-1", "name": "eth0", "description": "", "tags": [],
            "mac_address": "fa:16:3e:00:00:01", "network_id": "n-src",
            "fixed_ips": [{"subnet_id": "s-src", "ip_address": "10.0.0.5"}],
            "security_group_ids": ["g-src"], "allowed_address_pairs": [],
            "is_port_security_enabled": True,
            "floating_ips": [{"id": "f", "address": "198.51.100.7", "network_id": None,
                              "fixed_address": "10.0.0.5"}]}
    source = {
        "name": "web", "project_id": "p-src", "power_state": "shutdown",
        "flavor": {"original_name": "m1", "vcpus": 1, "extra_specs": {}},
        "image_id": None, "boots_from": "volume", "server_group_id": "sg-src",
        "key_name": None, "metadata": {"role": "web"}, "description": None, "user_data": None,
        "config_drive": False, "availability_zone": "nova", "user_id": "u",
        "tags": ["web", "ceph_migrate_stopped", "ceph_migrate_moved_to=d-1"],
        "disks": [{"kind": "volume", "role": "root", "size_gib": 1, "bootable": True,
                   "delete_on_termination": False, "volume_type": "ceph-old",
                   "image_metadata": {"hw_firmware_type": "uefi", "checksum": "abc"}}],
        "ports": [port]}
    twin = copy.deepcopy(source)
    twin.update(project_id="p-dst", power_state="running", server_group_id="sg-dst",
                tags=["web", "ceph_migrate_source_id=s-1"])
    twin["flavor"]["extra_specs"] = {"ceph_migrate:source_id": "f-src"}
    twin["disks"][0].update(volume_type="ceph", image_metadata={"hw_firmware_type": "uefi"})
    twin["ports"][0].update(id="port-2", network_id="n-dst", security_group_ids=["g-dst"],
                            fixed_ips=[{"subnet_id": "s-dst", "ip_address": "10.0.0.5"}])
    refs, _ = destination_refs(source, tmap, None)
    wanted = expected(source, refs, tmap)
    assert facts(twin) == wanted
    twin["ports"][0]["mac_address"] = "fa:16:3e:00:00:02"
    twin["metadata"] = {}
    assert [k for k in wanted if wanted[k] != facts(twin)[k]] == ["ports", "metadata"]


def test_a_network_resource_still_in_use_is_kept_and_said_not_a_failure():
    """A subnet of the pack's with a stranger's port on it: Neutron answers 409; the rollback
    keeps it, says why, and goes on with the rest."""
    from types import SimpleNamespace

    import openstack.exceptions as osexc

    from lib.neutron import remove
    from lib.tenant import source_tag

    def refuse(obj, ignore_missing):
        raise osexc.ConflictException("One or more ports have an IP allocation from this subnet.")
    subnet = SimpleNamespace(id="s1", tags=[source_tag("src-1")])
    net = SimpleNamespace(find_subnet=lambda i, ignore_missing: subnet, **{
        "delete_" + k: refuse for k in ("network", "subnet", "router", "security_group",
                                        "security_group_rule", "port", "ip")})
    said = remove(SimpleNamespace(network=net), "subnet", "s1", "src-1")
    assert said.startswith("kept: in use (") and "IP allocation" in said, said


def test_ephemeral_disks_are_said_carried_or_not_and_kept_in_nova_order():
    from lib.server_plan import warnings
    from lib.servers import disk_order

    def disk(suffix):
        return {"kind": "rbd", "role": "ephemeral", "pool": "vms", "image": UUID + suffix}
    one = {"disks": [{"kind": "rbd", "role": "root", "pool": "vms", "image": UUID + "_disk"},
                     disk("_disk.eph0")]}
    assert "is not carried" in warnings(one)[0] and "ephemeral=true" in warnings(one)[0]
    assert "is carried" in warnings(one, ephemeral=True)[0]
    assert warnings({"disks": []}, ephemeral=True) == []
    # Nova numbers ephemeral block devices as it was given them: eph2 before eph10
    found = ["_disk.swap", "_disk.eph10", "_disk", "_disk.eph2", "_disk.local"]
    assert sorted(found, key=disk_order) == [
        "_disk", "_disk.eph2", "_disk.eph10", "_disk.local", "_disk.swap"]
