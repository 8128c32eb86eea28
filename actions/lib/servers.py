"""A Nova server as its migration sees it: what the destination server needs (flavor, image,
disks in boot order, ports in full, floating IPs, server group, metadata, tags, description,
user data, config drive, key, availability zone, power and lock state), and what the pack
refuses to move, said before anything changes.

Its disks are Cinder volumes or Nova's own RBD images (``<uuid>_disk``, ``_disk.eph<N>``,
``_disk.local``, ``_disk.swap`` in the Nova pool, as libvirt's RBD image backend makes them);
an image-booted server without its root there has file-backed disks the pack cannot carry."""
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import names
from .ceph_cli import CephCli
from .clouds import api
from .settings import SOURCE, Settings

# states a server cannot be moved from (the pack stops and starts servers, nothing else)
UNMOVABLE = ("SHELVED", "SHELVED_OFFLOADED", "RESCUE", "RESIZE", "VERIFY_RESIZE", "MIGRATING",
             "REBUILD", "ERROR", "BUILD", "DELETED", "SOFT_DELETED")
# vNIC types that tie a port to host hardware (SR-IOV, vDPA, accelerators)
PASSTHROUGH_VNICS = ("direct", "direct-physical", "macvtap", "vdpa", "accelerator-direct",
                     "accelerator-direct-physical", "remote-managed")
PORT_PARAMS = ("name", "description", "network_id", "mac_address", "fixed_ips",
               "security_group_ids", "allowed_address_pairs", "is_port_security_enabled",
               "binding_vnic_type", "tags", "qos_policy_id", "dns_name")
# the disks libvirt's RBD image backend makes of a server, by suffix (after <uuid>_disk)
RBD_DISK_ROLES = {"": "root", ".local": "ephemeral", ".swap": "swap"}
# what Nova embeds of a server's flavor (microversion 2.47 and later)
FLAVOR_KEYS = ("original_name", "vcpus", "ram", "disk", "ephemeral", "swap", "extra_specs")
POWER_STATES = {0: "nostate", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed",
                7: "suspended"}


def rbd_role(server_id: str, name: str) -> Optional[str]:
    """The role of RBD image NAME among the server's disks (None: not one of them)."""
    prefix = "%s_disk" % server_id
    if not name.startswith(prefix):
        return None
    suffix = name[len(prefix):]
    if suffix.startswith(".eph") and suffix[4:].isdigit():
        return "ephemeral"
    return RBD_DISK_ROLES.get(suffix)


def disk_order(name: str) -> Tuple[str, int]:
    """Nova's disks of a server in its order: eph2 before eph10 (numbered as it was given
    them)."""
    head = name.rstrip("0123456789")
    return head, int(name[len(head):] or -1)


def describe_server(conn: Any, rbd: Optional[CephCli], nova_pool: str, server_id: str
                    ) -> Dict[str, Any]:
    """Everything about SERVER_ID its migration needs, read as an admin (RBD disks listed in
    NOVA_POOL of the source cluster through RBD; none without RBD: a counterpart's)."""
    compute, net = conn.compute, conn.network
    server = api("server %s" % server_id, lambda: compute.get_server(server_id))
    embedded = server.flavor or {}
    flavor = {k: embedded.get(k) for k in FLAVOR_KEYS}
    flavor["extra_specs"] = dict(flavor["extra_specs"] or {})
    image_id = (server.image or {}).get("id") or None
    attachments = api("volumes of server %s" % server_id,
                      lambda: list(compute.volume_attachments(server)))
    disks: List[Dict[str, Any]] = []
    root_device = server.root_device_name
    for attachment in sorted(attachments, key=lambda a: a.device or ""):
        volume = api("volume %s" % attachment.volume_id,
                     lambda: conn.block_storage.get_volume(attachment.volume_id))
        disks.append({
            "kind": "volume", "volume_id": volume.id,
            "role": "root" if attachment.device == root_device else "data",
            "device": attachment.device, "size_gib": volume.size,
            "delete_on_termination": bool(getattr(attachment, "delete_on_termination", False)),
            "bootable": bool(volume.is_bootable), "encrypted": bool(volume.is_encrypted),
            "multiattach": bool(volume.is_multiattach), "volume_type": volume.volume_type,
            "image_metadata": dict(volume.volume_image_metadata or {})})
    names: List[str] = []
    if rbd is not None:
        cli = rbd
        names = api("RBD images of %s" % nova_pool, lambda: cli.run("ls", nova_pool)) or []
    for name in sorted((n for n in names if rbd_role(server.id, n)), key=disk_order):
        disks.append({"kind": "rbd", "role": rbd_role(server.id, name), "pool": nova_pool,
                      "image": name})
    ports = []
    # in the guest's NIC order, not Neutron's listing order (nor Nova's interface list, which
    # is Neutron's): the server's addresses follow its network info, NIC by NIC; the
    # counterpart gets its ports in this order, eth0 first
    nics: List[str] = []
    for entries in (server.addresses or {}).values():
        for entry in entries:
            mac = entry.get("OS-EXT-IPS-MAC:mac_addr")
            if mac and mac not in nics:
                nics.append(mac)
    for port in sorted(api("ports of server %s" % server_id,
                           lambda: list(net.ports(device_id=server.id))),
                       key=lambda p: (nics.index(p.mac_address) if p.mac_address in nics
                                      else len(nics), p.id)):
        described = {k: getattr(port, k, None) for k in PORT_PARAMS}
        described["id"] = port.id
        described["floating_ips"] = [
            {"id": ip.id, "address": ip.floating_ip_address,
             "network_id": ip.floating_network_id, "fixed_address": ip.fixed_ip_address}
            for ip in api("floating IPs of port %s" % port.id,
                          lambda: list(net.ips(port_id=port.id)))]
        ports.append(described)
    groups = [g.id for g in api("server groups", lambda: list(
        compute.server_groups(all_projects=True))) if server.id in (g.member_ids or [])]
    return {
        "id": server.id, "name": server.name, "project_id": server.project_id,
        "user_id": server.user_id,
        "status": server.status, "power_state": POWER_STATES.get(server.power_state,
                                                                 str(server.power_state)),
        "locked": bool(server.is_locked), "flavor": flavor, "image_id": image_id,
        "boots_from": "volume" if not image_id else "image",
        "disks": disks, "ports": ports, "server_group_id": groups[0] if groups else None,
        "metadata": dict(server.metadata or {}), "tags": sorted(server.tags or []),
        "description": server.description, "user_data": server.user_data,
        "config_drive": bool(server.has_config_drive), "key_name": server.key_name,
        "availability_zone": server.availability_zone, "host": server.compute_host}


def describe(settings: Settings, server_id: str, conn: Any = None) -> Dict[str, Any]:
    """The source server's description, with the refusals that would stop its migration
    (CONN: the source connection, when the caller has one)."""
    server = describe_server(conn or settings.cloud(SOURCE).connect(), settings.rbd(SOURCE),
                             settings.pools.mirrored_nova, names.server_id(server_id))
    return dict(server, refusals=refusals(server), disk_summary=disk_summary(server["disks"]))


def refusals(server: Mapping[str, Any]) -> List[str]:
    """Why the pack will not move SERVER (its description), each said plainly; [] when it
    can."""
    found = []
    if server["status"] in UNMOVABLE:
        found.append("the server is %s: bring it to ACTIVE or SHUTOFF first"
                     % server["status"])
    specs = (server.get("flavor") or {}).get("extra_specs") or {}
    if any(k.startswith("hw:tpm") for k in specs):
        found.append("its flavor gives it a vTPM (%s), whose secret stays in the source "
                     "cloud's key manager" % ", ".join(sorted(k for k in specs
                                                              if k.startswith("hw:tpm"))))
    if "pci_passthrough:alias" in specs:
        found.append("its flavor passes PCI devices through (pci_passthrough:alias)")
    for port in server.get("ports") or []:
        if port.get("binding_vnic_type") in PASSTHROUGH_VNICS:
            found.append("port %s is %s (SR-IOV or similar: tied to the host's hardware)"
                         % (port["id"], port["binding_vnic_type"]))
    for disk in server.get("disks") or []:
        if disk["kind"] != "volume":
            continue
        if disk["encrypted"]:
            found.append("volume %s is encrypted (its key stays in the source cloud's key "
                         "manager)" % disk["volume_id"])
        if disk["multiattach"]:
            found.append("volume %s is multiattach" % disk["volume_id"])
    if server.get("boots_from") == "image" and not any(
            d["kind"] == "rbd" and d["role"] == "root" for d in server.get("disks") or []):
        found.append("its root disk is not in the Nova pool: file-backed (or another backend's) "
                     "disks cannot be carried Ceph to Ceph")
    if server.get("boots_from") == "volume" and not any(
            d["kind"] == "volume" and d["role"] == "root" for d in server.get("disks") or []):
        found.append("it boots from a volume the pack cannot find among its attachments")
    return found


def disk_summary(disks: Sequence[Mapping[str, Any]]) -> str:
    """'root volume 1 GiB, data volume 2 GiB, ephemeral rbd vms/<uuid>_disk.eph0'."""
    def where(disk: Mapping[str, Any]) -> str:
        if disk["kind"] == "volume":
            return "%s GiB" % disk["size_gib"]
        return "%s/%s" % (disk["pool"], disk["image"])
    return ", ".join("%s %s %s" % (d["role"], d["kind"], where(d)) for d in disks)
