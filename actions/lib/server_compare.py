"""A migrated server compared with its source, field by field, through the tenant's mapping:
the check after a server's cutover and compare_tenant's part for servers. Read-only.

What is compared is what the issue promises to carry: flavor, image (an image-booted server
boots from its own registered root), block devices in order with delete-on-termination and the
root's volume image metadata, ports in full (MAC, fixed IPs, security groups, address pairs,
port security) with their floating IPs, server group, key, metadata, tags, description, user
data, config drive, availability zone and the power state the source had before the pack
stopped it. The pack's own tags are left out on both sides (they name one cloud only)."""
from typing import Any, Dict, List, Mapping, Optional

from . import glance, nova
from .server_migration import source_image
from .server_plan import destination_refs, source_flavor_id, STOPPED_TAG
from .servers import describe, describe_server
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings
from .tenant import differences, TenantMap
from .tenant_infra import compare_tenant, load_map
from .waiting import Reader

PACK_TAGS = "ceph_migrate_"       # every tag the pack sets, at either cloud, starts so
# a volume's image metadata that Cinder or Glance write for themselves, not the guest's
OWN_METADATA = ("checksum", "size", "image_name", "os_hash_value", "os_hash_algo",
                "signature_verified")


def compare_server(settings: Settings, server_id: str, read: Optional[Reader] = None,
                   source: Any = None, admin: Any = None) -> Dict[str, Any]:
    """SERVER_ID (a source server) and its counterpart: {server_id, destination_id,
    migrated, differences: [{param, source, destination}]}. A server not migrated yet has
    migrated false and no differences (nothing to compare). SOURCE, ADMIN: the two clouds'
    connections, when the caller has them."""
    source = source or settings.cloud(SOURCE).connect()
    server = describe(settings, server_id, source)
    tmap = load_map(read, server["project_id"])
    entry = tmap.get("server", server["id"])
    admin = admin or settings.cloud(DESTINATION).connect()
    found = nova.live_server(admin.compute, entry.destination_id) if entry else None
    result = {"server_id": server["id"], "name": server["name"],
              "destination_id": found.id if found is not None else None,
              "migrated": found is not None, "differences": []}
    if found is None:
        return result
    twin = describe_server(admin, None, "", found.id)
    refs, _ = destination_refs(server, tmap, source_flavor_id(source, server))
    wanted = expected(server, refs, tmap)
    wanted["image_id"] = _root_image(settings, server)
    if server["boots_from"] == "image" and twin["boots_from"] == "volume":
        _as_boot_volume(settings, server, twin, wanted)
    result["differences"] = [{"param": k, "source": wanted[k], "destination": have.get(k)}
                             for have in [facts(twin)] for k in differences(wanted, have)]
    return result


def expected(server: Mapping[str, Any], refs: Mapping[str, Any],
             tmap: TenantMap) -> Dict[str, Any]:
    """What the counterpart of SERVER (a source description) should show, in destination
    ids (REFS: its references resolved through the mapping)."""
    want = facts(server)
    want.update(project_id=refs["project_id"], server_group_id=refs["server_group_id"],
                availability_zone=refs["availability_zone"] or server["availability_zone"])
    # the source is off since the pack stopped it: what it was before is what the tag says
    if STOPPED_TAG in (server.get("tags") or []):
        want["power_state"] = "running"
    want["block_devices"] = [
        (role, size, delete, bootable, tmap.translate("volume_types", volume_type) or volume_type)
        for role, size, delete, bootable, volume_type in want["block_devices"]]
    for port, mapped in zip(want["ports"], refs["ports"]):      # destination_refs keeps the order
        port.update(network_id=mapped["network_id"],
                    security_group_ids=sorted(mapped["security_group_ids"]),
                    fixed_ips=[(ip["ip_address"], ip["subnet_id"])
                               for ip in mapped["fixed_ips"]])
    return want


def facts(server: Mapping[str, Any]) -> Dict[str, Any]:
    """The comparable part of a server's description (lib.servers), ids as they are."""
    volumes = [d for d in server["disks"] if d["kind"] == "volume"]
    return {
        "name": server["name"], "project_id": server["project_id"],
        "power_state": server["power_state"],
        "flavor": dict(server["flavor"], extra_specs={
            k: v for k, v in server["flavor"]["extra_specs"].items() if k != nova.FLAVOR_MARK}),
        "image_id": server["image_id"], "boots_from": server["boots_from"],
        "block_devices": [(d["role"], d["size_gib"], d["delete_on_termination"],
                           d["bootable"], d["volume_type"]) for d in volumes],
        "root_image_metadata": _guest_metadata(volumes),
        "ports": [{"name": p.get("name") or "",
                   "description": p.get("description") or "",
                   "mac_address": p["mac_address"], "network_id": p["network_id"],
                   "fixed_ips": [(ip["ip_address"], ip["subnet_id"])
                                 for ip in p.get("fixed_ips") or []],
                   "security_group_ids": sorted(p.get("security_group_ids") or []),
                   "allowed_address_pairs": p.get("allowed_address_pairs") or [],
                   "is_port_security_enabled": p.get("is_port_security_enabled"),
                   "tags": _user(p.get("tags")),
                   "floating_ips": [ip["fixed_address"] for ip in p["floating_ips"]]}
                  for p in server["ports"]],
        "server_group_id": server["server_group_id"], "key_name": server["key_name"],
        "metadata": server["metadata"], "tags": _user(server["tags"]),
        "description": server["description"], "user_data": server["user_data"],
        "config_drive": server["config_drive"],
        "availability_zone": server["availability_zone"]}


def _guest_metadata(volumes: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """The root volume's image metadata that tells how the guest boots (firmware, machine
    type, disk bus...), without what Cinder and Glance keep for themselves."""
    for disk in volumes:
        if disk["role"] == "root":
            return {k: str(v) for k, v in (disk["image_metadata"] or {}).items()
                    if k not in OWN_METADATA}
    return {}


def _as_boot_volume(settings: Settings, server: Mapping[str, Any], twin: Mapping[str, Any],
                    wanted: Dict[str, Any]) -> None:
    """An image-booted server whose root crossed as its boot volume (root_target volume):
    its counterpart boots from that volume first (the flavor's root size, bootable, kept when
    the server goes, of the destination's default type), with its image's properties."""
    root: Mapping[str, Any] = next(
        (d for d in twin["disks"] if d["kind"] == "volume" and d["role"] == "root"), {})
    wanted.update(boots_from="volume", image_id=None, root_image_metadata={
        k: str(v) for k, v in (source_image(settings, server["image_id"]).get("properties")
                               or {}).items() if k not in OWN_METADATA})
    wanted["block_devices"] = [("root", int(server["flavor"].get("disk") or 0)
                                or root.get("size_gib"), False, True,
                                root.get("volume_type"))] + wanted["block_devices"]


def _user(tags: Optional[List[str]]) -> List[str]:
    return sorted(t for t in tags or [] if not t.startswith(PACK_TAGS))


def _root_image(settings: Settings, server: Mapping[str, Any]) -> Optional[str]:
    """The image the counterpart boots from: the server's own root, registered at the
    destination (None for a volume-backed server)."""
    if server["boots_from"] != "image":
        return None
    image = glance.find_registered_image(settings.cloud(IMAGE_REGISTRATION).connect(),
                                         server["id"])
    return image.id if image is not None else "(not registered)"


def compare_servers(settings: Settings, project_id: str,
                    read: Optional[Reader] = None) -> Dict[str, Any]:
    """Every server of the source project PROJECT_ID: the migrated ones compared, the others
    named (not a difference: a tenant's infrastructure crosses before its servers)."""
    source = settings.cloud(SOURCE).connect()
    servers = nova.project_servers(source.compute, project_id)
    admin = settings.cloud(DESTINATION).connect() if servers else None   # once, for all
    compared = [compare_server(settings, s.id, read, source, admin) for s in servers]
    return {"migrated": [c for c in compared if c["migrated"]],
            "not_migrated": [{"server_id": c["server_id"], "name": c["name"]}
                             for c in compared if not c["migrated"]]}


def compare_tenant_servers(settings: Settings, doc: Mapping[str, Any],
                           destination_project: Optional[str], tmap: TenantMap,
                           read: Optional[Reader] = None) -> Dict[str, Any]:
    """compare_tenant with the tenant's servers: each migrated server's differences among the
    others (kind server), and which servers have not crossed yet (``servers``)."""
    compared = compare_tenant(settings, doc, destination_project, tmap)
    servers = compare_servers(settings, doc["project"]["id"], read)
    for server in servers["migrated"]:
        compared["differences"] += [
            dict(kind="server", source_id=server["server_id"], name=server["name"],
                 missing=False, **d) for d in server["differences"]]
    compared["clean"] = not compared["differences"]
    compared["servers"] = {
        "migrated": [{"server_id": s["server_id"], "name": s["name"],
                      "destination_id": s["destination_id"]} for s in servers["migrated"]],
        "not_migrated": servers["not_migrated"]}
    return compared
