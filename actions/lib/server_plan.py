"""A server's migration planned: each reference of its description (lib.servers) resolved
through the tenant's mapping, which migrate_tenant_infra filled (flavor, networks, subnets,
security groups, keypair, server group, project), and the destination checked before anything
changes: the refusals, what is not there yet, quotas, compute and Ceph room. Read-only."""
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import names, nova, placement, quotas
from .cinder import project_volumes
from .keystone import resolve_project
from .capacity import require_room
from .checklist import Checklist
from .clouds import api
from .diff_sync import recorded_snapshots
from .errors import RefusedError
from .servers import describe
from .settings import DESTINATION, SOURCE, Settings
from .tenant import TenantMap
from .tenant_infra import load_map
from .waiting import Reader

GIB = 1024 ** 3
# the source server's tags: the pack stopped it (it ran: its counterpart runs, a rollback
# starts it again), and where it went once released
STOPPED_TAG = "ceph_migrate_stopped"
MOVED_TAG = "ceph_migrate_moved_to="


def destination_refs(server: Mapping[str, Any], tmap: TenantMap,
                     flavor_id: Optional[str]) -> Tuple[Dict[str, Any], List[str]]:
    """What SERVER's references are at the destination (FLAVOR_ID: its source flavor's id),
    and what is missing there, each said with what brings it."""
    missing: List[str] = []

    def mapped(kind: str, source_id: Optional[str], what: str) -> Optional[str]:
        if not source_id:
            return None
        entry = tmap.get(kind, source_id)
        if entry is None:
            missing.append("%s %s is not at the destination: migrate the tenant's "
                           "infrastructure first (migrate_tenant_infra)" % (what, source_id))
            return None
        return entry.destination_id

    flavors = tmap.translation.get("flavors") or {}
    flavor = flavors.get(flavor_id or "") or mapped("flavor", flavor_id, "flavor")
    ports = []
    for port in server.get("ports") or []:
        ports.append({
            "source_id": port["id"], "name": port.get("name") or "",
            "description": port.get("description") or "",
            "tags": sorted(port.get("tags") or []), "mac_address": port["mac_address"],
            "network_id": mapped("network", port["network_id"], "network"),
            "fixed_ips": [{"ip_address": ip["ip_address"],
                           "subnet_id": mapped("subnet", ip["subnet_id"], "subnet")}
                          for ip in port.get("fixed_ips") or []],
            "security_group_ids": [mapped("security_group", g, "security group")
                                   for g in port.get("security_group_ids") or []],
            "allowed_address_pairs": port.get("allowed_address_pairs") or [],
            "is_port_security_enabled": port.get("is_port_security_enabled"),
            "floating_ips": [dict(ip, network_id=_external(tmap, ip["network_id"], missing))
                             for ip in port.get("floating_ips") or []]})
    key = None
    if server.get("key_name"):
        key = mapped("keypair", "%s:%s" % (server.get("user_id"), server["key_name"]),
                     "keypair")
    return {"project_id": mapped("project", server.get("project_id"), "project"),
            "flavor_id": flavor, "ports": ports, "keypair": key,
            "server_group_id": mapped("server_group", server.get("server_group_id"),
                                      "server group"),
            "availability_zone": tmap.translate("availability_zones",
                                                server.get("availability_zone"))}, missing


def source_flavor_id(conn: Any, server: Mapping[str, Any]) -> Optional[str]:
    """The id of the source flavor SERVER runs on (Nova embeds only its name); None when that
    flavor is gone."""
    name = (server.get("flavor") or {}).get("original_name")
    flavor = api("flavor %s" % name, lambda: conn.compute.find_flavor(
        name, ignore_missing=True)) if name else None
    return flavor.id if flavor is not None else None


ROOT_TARGETS = ("image", "volume")


def disk_pairs(server: Mapping[str, Any], pools: Any, ephemeral: bool = False,
               root_target: str = "image") -> List[Dict[str, Any]]:
    """Where each of SERVER's disks is copied, in boot order: a volume's RBD image into the
    destination Cinder pool (managed there after the cutover); Nova's root disk
    (``<uuid>_disk``) by default into the destination Glance pool as the server's own image
    (registered there by its rbd:// location: the destination server boots from it,
    copy-on-write), or with ROOT_TARGET volume into the destination Cinder pool, managed there
    as the server's boot volume; its ephemeral disks only when asked (EPHEMERAL), into the
    destination Nova pool under the source's names, where they become the counterpart's own
    (carry_ephemeral_disks); swap never. ``as`` says what the copy becomes."""
    if root_target not in ROOT_TARGETS:
        raise RefusedError("root_target is image or volume, not %r" % root_target)
    pairs = []
    for disk in server["disks"]:
        if disk["kind"] == "volume":
            name = names.cinder_image(disk["volume_id"])
            pairs.append({"role": disk["role"], "kind": "volume", "volume_id": disk["volume_id"],
                          "as": "volume",
                          "source": {"pool": pools.mirrored_cinder, "image": name},
                          "destination": {"pool": pools.destination_cinder, "image": name}})
        elif disk["role"] == "root" or (disk["role"] == "ephemeral" and ephemeral):
            becomes = "disk" if disk["role"] == "ephemeral" else root_target
            pairs.append({"role": disk["role"], "kind": "rbd", "as": becomes,
                          "source": {"pool": disk["pool"], "image": disk["image"]},
                          "destination": {"pool": {"volume": pools.destination_cinder,
                                                   "image": pools.destination_glance,
                                                   "disk": pools.mirrored_nova}[becomes],
                                          "image": disk["image"]}})
    return pairs


def _external(tmap: TenantMap, network_id: Optional[str], missing: List[str]) -> Optional[str]:
    found = (tmap.translation.get("external_networks") or {}).get(network_id or "")
    if network_id and not found:
        missing.append("external network %s has no counterpart (translation "
                       "external_networks)" % network_id)
    return found


def plan_server_migration(settings: Settings, server_id: str, read: Optional[Reader] = None,
                          root_target: str = "image", ephemeral: bool = False
                          ) -> Dict[str, Any]:
    """The server's dry run: its description, where each reference goes, and every check
    (all run, all reported); ROOT_TARGET: where an image-booted server's root lands;
    EPHEMERAL: its ephemeral disk carried too."""
    source = settings.cloud(SOURCE).connect()
    server = describe(settings, server_id, source)
    tmap = load_map(read, server["project_id"])
    refs, missing = destination_refs(server, tmap, source_flavor_id(source, server))
    checklist = Checklist()
    checklist.run("the server can be moved", lambda: _none_or_refuse(server["refusals"]))
    checklist.run("its references are at the destination", lambda: _none_or_refuse(missing))
    destination = settings.cloud(DESTINATION).connect()
    made = nova.counterpart(destination.compute, server["id"])
    if made is not None:    # cut over already: what is left is its release and cleanup
        return checklist.report(server=server, destination=refs,
                                warnings=warnings(server, ephemeral),
                                counterpart={"server_id": made.id, "name": made.name,
                                             "status": made.status},
                                released=any(t.startswith(MOVED_TAG) for t in server["tags"]),
                                snapshots_left=_snapshots_left(settings, server),
                                text="server %s (%s) is already at the destination as %s (%s)"
                                % (server["name"], server["id"], made.id, made.status))
    need = _needs(server)
    if refs["project_id"]:
        checklist.run("the destination project's quotas hold it",
                      lambda: _quota_room(destination, refs["project_id"], need))
    checklist.run("the destination has compute for it",
                  lambda: _compute_room(destination, need))
    checklist.run("the destination cluster has room for its disks",
                  lambda: _disk_room(settings, server, root_target, ephemeral))
    return checklist.report(server=server, destination=refs, needs=need, counterpart=None,
                            released=False, warnings=warnings(server, ephemeral),
                            text=_text(server, refs, checklist, ephemeral))


def warnings(server: Mapping[str, Any], ephemeral: bool = False) -> List[str]:
    """What moves differently than an operator may assume (said, not refused)."""
    said = []
    for disk in server["disks"]:
        if disk["kind"] == "rbd" and disk["role"] == "ephemeral" and not ephemeral:
            said.append("ephemeral disk %s/%s is not carried: the server at the destination "
                        "gets a blank one from its flavor (ephemeral=true carries it)"
                        % (disk["pool"], disk["image"]))
        elif disk["kind"] == "rbd" and disk["role"] == "ephemeral":
            said.append("ephemeral disk %s/%s is carried: the destination server is stopped "
                        "once more inside the window, to take it in place of its blank one, "
                        "and started again" % (disk["pool"], disk["image"]))
    return said


def _snapshots_left(settings: Settings, server: Mapping[str, Any]) -> List[str]:
    """The sync snapshots the pack took of the source's disks and has not dropped yet (a run
    stopped between the release and the cleanup leaves them)."""
    left = []
    for pair in disk_pairs(server, settings.pools, ephemeral=True):
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        if source.find() is not None:
            left += ["%s@%s" % (source.spec, s) for s in recorded_snapshots(source)]
    return left


def _none_or_refuse(problems: List[str]) -> str:
    if problems:
        raise RefusedError("; ".join(problems))
    return "yes"


def _needs(server: Mapping[str, Any]) -> Dict[str, int]:
    flavor = server.get("flavor") or {}
    volumes = [d for d in server["disks"] if d["kind"] == "volume"]
    return {"cores": int(flavor.get("vcpus") or 0), "ram": int(flavor.get("ram") or 0),
            "instances": 1, "volumes": len(volumes),
            "gigabytes": sum(int(d["size_gib"]) for d in volumes),
            "ports": len(server.get("ports") or [])}


def _quota_room(conn: Any, project_id: str, need: Mapping[str, int]) -> str:
    used = quotas.usage(conn, project_id)
    limits = {r.source_id: r.params for r in quotas.export(conn, project_id)}
    short = []
    for service, keys in (("compute", ("cores", "ram", "instances")),
                          ("volume", ("volumes", "gigabytes")), ("network", ("ports",))):
        for key in keys:
            limit = limits.get(service, {}).get(key)
            if limit is not None and int(limit) >= 0 and \
                    used[service][key] + need[key] > int(limit):
                short.append("%s %s: %d used + %d needed > %d" % (
                    service, key, used[service][key], need[key], int(limit)))
    if short:
        raise RefusedError("the destination project's quotas are short: " + "; ".join(short))
    return "within the quotas"


def _compute_room(conn: Any, need: Mapping[str, int]) -> str:
    free = placement.free(conn)
    if need["cores"] > free["VCPU"] or need["ram"] > free["MEMORY_MB"]:
        raise RefusedError("the destination has %d vCPU and %d MiB free, the server needs %d "
                           "and %d" % (free["VCPU"], free["MEMORY_MB"], need["cores"],
                                       need["ram"]))
    return "%d vCPU and %d MiB free" % (free["VCPU"], free["MEMORY_MB"])


def _disk_room(settings: Settings, server: Mapping[str, Any], root_target: str,
               ephemeral: bool = False) -> str:
    """Room in each destination pool for the disks copied there (disk_pairs: volumes in the
    Cinder pool, Nova's root in the Glance pool or, as a volume, the Cinder pool, an
    ephemeral disk in the Nova pool; swap never); provisioned sizes, the peak."""
    need: Dict[str, int] = {}
    for pair in disk_pairs(server, settings.pools, ephemeral, root_target):
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        pool = pair["destination"]["pool"]
        need[pool] = need.get(pool, 0) + int(source.info()["size"])
    ceph = settings.ceph(DESTINATION)
    details = [require_room(ceph, pool, [pool], size, settings.capacity_reserve)
               for pool, size in sorted(need.items())]
    return "; ".join(details) or "no disk to carry"


def _text(server: Mapping[str, Any], refs: Mapping[str, Any], checklist: Checklist,
          ephemeral: bool = False) -> str:
    lines = ["server %s (%s): %s, %s" % (
        server["name"], server["id"], server["status"], server["disk_summary"] or "no disk")]
    for check in checklist.checks:
        lines.append("%s %s: %s" % ("ok" if check["ok"] else "NO", check["check"],
                                    check["detail"]))
    lines += ["warning: " + w for w in warnings(server, ephemeral)]
    return "\n".join(lines)


def workload(settings: Settings, project: str) -> Dict[str, Any]:
    """What of the source PROJECT migrate_tenant moves after its infrastructure: its servers
    (with their attached volumes) and its detached volumes, each in the order they go; the
    volumes neither can take (not available, not attached) said with why."""
    conn = settings.cloud(SOURCE).connect()
    found = resolve_project(conn, project)
    servers = nova.project_servers(conn.compute, found["id"])
    volumes, skipped = [], []
    for volume in sorted(project_volumes(conn, found["id"]), key=lambda v: (v.name or "", v.id)):
        if volume.attachments:
            continue                # its server carries it
        if volume.status == "available":
            volumes.append({"id": volume.id, "name": volume.name, "size_gib": volume.size,
                            "bootable": bool(volume.is_bootable)})
        else:
            skipped.append({"id": volume.id, "name": volume.name,
                            "why": "it is %s (neither available nor attached)" % volume.status})
    return {"project": found,
            "servers": [{"id": s.id, "name": s.name, "status": s.status} for s in servers],
            "volumes": volumes, "skipped": skipped,
            "server_ids": [s.id for s in servers], "volume_ids": [v["id"] for v in volumes]}
