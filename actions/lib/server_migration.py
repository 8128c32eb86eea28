"""The server procedure's steps at the destination, each found again on a re-run through the
tenant's mapping (lib.tenant's one rule): first the server's ports, made before the cutover
with the source's MAC and addresses, so the window holds only what must wait for the stop."""
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, cast, Dict, List, Optional, Tuple, TypeVar

from . import glance, nova
from .cinder import find_managed_disk, find_migrated_volume, manage_disk, manage_volume
from .clouds import api
from .copying import create_snapshot
from .errors import CephMigrateError, NotFound, RefusedError, StepFailed
from .image_transfer import GLANCE_SNAPSHOT
from .names import SOURCE_ID_KEY
from .rbd_image import META_COPY_OF, META_REGISTERED, META_VERIFIED, outcome, RbdImage, where
from .neutron import (address_pairs, floating_ip_store, PORT_PARAMS, port_store,
                      same_address)
from .copying import remove_when_released
from .diff_sync import (common_snapshots, drop_snapshots, presync, sync_round, sync_snapshots,
                        verify_sync)
from .server_plan import (destination_refs, disk_pairs, MOVED_TAG, source_flavor_id,
                          STOPPED_TAG)
from .servers import describe, rbd_role
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings
from .tenant import NEW, reconcile, Result, source_tag, summary, TenantMap
from .tenant_infra import guarded, load_map, save_map
from .waiting import Reader, Writer

PORT_KEYS = PORT_PARAMS + ("tags",)
# seconds between two looks at a server or image changing state inside the cutover window
POLL = 0.5
F = TypeVar("F", bound=Callable[..., Dict[str, Any]])


def timed(step: F) -> F:
    """A step of the cutover window that says how long it took (``seconds``) and when it
    ended (``ended_at``, epoch): the workflow reports the window by phase from them."""
    @functools.wraps(step)
    def run(*args: Any, **kwargs: Any) -> Dict[str, Any]:
        began = time.monotonic()
        result = step(*args, **kwargs)
        return dict(result, seconds=round(time.monotonic() - began, 2),
                    ended_at=round(time.time(), 2))
    return cast(F, run)


def prepare_ports(settings: Settings, server_id: str, read: Optional[Reader] = None,
                  write: Optional[Writer] = None, dry_run: bool = False) -> Dict[str, Any]:
    """The server's ports at the destination (in its tenant's destination project), each
    created, found again or said to conflict; the mapping keeps them for the rollback."""
    server = describe(settings, server_id)
    tmap = load_map(read, server["project_id"])
    refs, missing = destination_refs(server, tmap, None)
    missing = [m for m in missing if not m.startswith(("flavor", "external network"))]
    if missing or not refs["project_id"]:
        raise RefusedError("; ".join(missing) or "the server's project is not at the "
                           "destination: migrate the tenant's infrastructure first")
    admin = settings.cloud(DESTINATION).connect()
    store = guarded(port_store(admin, refs["project_id"]), "port")
    results = []
    for port in refs["ports"]:
        wanted = {k: port[k] for k in PORT_KEYS}
        wanted["allowed_address_pairs"] = address_pairs(wanted["allowed_address_pairs"])
        wanted["security_group_ids"] = sorted(wanted["security_group_ids"])
        results.append(reconcile("port", port["source_id"], wanted, store, tmap,
                                 dry_run=dry_run, label=port["mac_address"]))
    floating = _floating_ips(admin, refs, results, tmap, dry_run)
    if not dry_run:
        save_map(write, server["project_id"], tmap, read)
    ports: List[Dict[str, Any]] = [r.as_dict() for r in results]
    done = results + floating
    return {"changed": not dry_run and any(r.changed for r in done), "dry_run": dry_run,
            "summary": summary(done), "ports": ports,
            "floating_ips": [r.as_dict() for r in floating],
            "project_id": refs["project_id"]}


def _floating_ips(conn: Any, refs: Dict[str, Any], ports: List[Result], tmap: TenantMap,
                  dry_run: bool) -> List[Result]:
    """Each source floating IP on its port's twin, on the external network the translation
    names (the same address when the destination's external subnet holds it)."""
    net = conn.network
    wanted_by_ip: List[Tuple[Dict[str, Any], Optional[Dict[str, Any]]]] = []
    preferred: Dict[str, Optional[str]] = {}
    for port, made in zip(refs["ports"], ports):
        for ip in port["floating_ips"]:
            if not ip["network_id"]:
                wanted_by_ip.append((ip, None))
                continue
            cidrs = [s.cidr for s in api("subnets of %s" % ip["network_id"], lambda: list(
                net.subnets(network_id=ip["network_id"])))]
            preferred[source_tag(ip["id"])] = same_address(ip["address"], cidrs)
            wanted_by_ip.append((ip, {
                "floating_network_id": ip["network_id"],
                "port_id": made.destination_id or "%sport from %s)" % (NEW, port["source_id"]),
                "fixed_ip_address": ip["fixed_address"], "tags": []}))
    store = guarded(floating_ip_store(conn, refs["project_id"], preferred), "floating_ip")
    done = []
    for ip, wanted in wanted_by_ip:
        if wanted is None:
            done.append(Result("floating_ip", ip["id"], ip["address"], "conflict", None, False,
                               "its external network has no counterpart (translation "
                               "external_networks)"))
            continue
        done.append(reconcile("floating_ip", ip["id"], wanted, store, tmap, dry_run=dry_run,
                              label=ip["address"]))
    return done


@timed
def sync_server_disks(settings: Settings, server_id: str, final: bool = False,
                      ephemeral: bool = False, max_rounds: int = 3,
                      server: Optional[Dict[str, Any]] = None,
                      root_target: str = "image", read: Optional[Reader] = None
                      ) -> Dict[str, Any]:
    """Bring each carried disk's copy up to a new snapshot of it (disk_pairs, ROOT_TARGET):
    rounds while the server runs, then the full check; or (FINAL, once it is stopped) one last
    round per disk and the check of the delta it shipped, the disks side by side, but for a
    copy an earlier run of the window managed already (Cinder renamed it: copying again would
    leave a second copy). The copies are the pack's (recorded), found again on a re-run.
    SERVER: its description when the caller has it; READ: the tenant's mapping (where its
    managed volumes are)."""
    server = server or describe(settings, server_id)
    made = nova.counterpart(settings.cloud(DESTINATION).connect().compute, server["id"])
    if made is not None:    # its copies are its disks now: another round would overwrite them
        raise RefusedError("server %s already stands at the destination as %s: its disks are "
                           "not copied again (rollback_server undoes the migration)"
                           % (server["id"], made.id))
    pairs = disk_pairs(server, settings.pools, ephemeral, root_target)
    # every disk within the one copy timeout (under the action's own StackStorm timeout)
    deadline = time.monotonic() + settings.copy_timeout

    def left() -> float:
        if time.monotonic() >= deadline:
            raise CephMigrateError("the disks took longer than copy.timeout (%ss): re-run to "
                                   "go on (each copy continues from its last snapshot)"
                                   % settings.copy_timeout)
        return deadline - time.monotonic()
    found = []
    for pair in pairs:
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        target = settings.image(DESTINATION, pair["destination"]["pool"],
                                pair["destination"]["image"])
        found.append((pair, source, target, _managed(settings, server, pair, source, read)
                      if final and pair["as"] == "volume" and target.find() is None else None))

    def one(disk: Tuple[Dict[str, Any], RbdImage, RbdImage, Optional[str]]) -> Dict[str, Any]:
        pair, source, target, managed = disk
        if managed is not None:
            return dict(pair, snapshot=None, bytes=0, verified=True, managed=managed)
        if final:
            shipped = sync_round(source, target, settings.copy_features, left(), prune=False)
            checked = verify_sync(source, target, left(), full=False)
            return dict(pair, snapshot=shipped["snapshot"], bytes=shipped["bytes"],
                        verified=checked["verified"], hashed_bytes=checked.get("hashed_bytes"))
        rounds = presync(source, target, settings.copy_features, left(), max_rounds=max_rounds)
        # the full check, before the window: inside it only the last delta is checked
        checked = verify_sync(source, target, left(), full=True)
        return dict(pair, snapshot=rounds["snapshot"], bytes=rounds["bytes"],
                    rounds=len(rounds["rounds"]), verified=checked["verified"])
    if final:       # inside the window: every disk's last round side by side
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(found)))) as pool:
            done = list(pool.map(one, found))
    else:           # while the server runs: one disk at a time, the clusters' load bounded
        done = [one(disk) for disk in found]
    return {"changed": bool(done), "final": final, "disks": done,
            "bytes": sum(d["bytes"] for d in done)}


def _managed(settings: Settings, server: Dict[str, Any], pair: Dict[str, Any],
             source: RbdImage, read: Optional[Reader]) -> Optional[str]:
    """The destination volume an earlier run managed of PAIR's copy (its id), or None."""
    project = load_map(read, server["project_id"]).get("project", server["project_id"])
    if project is None:
        return None
    admin = settings.cloud(DESTINATION).connect()
    found = find_migrated_volume(settings, admin, project.destination_id, pair["volume_id"]) \
        if pair["kind"] == "volume" else \
        find_managed_disk(settings, admin, project.destination_id, source)
    return found.id if found is not None else None


@timed
def register_server_image(settings: Settings, server_id: str, read: Optional[Reader] = None,
                          server: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The server's root disk, copied and checked (sync_server_disks final), registered at the
    destination Glance as the server's own image by its rbd:// location (its sync snapshots
    dropped, ``snap`` protected, as Glance serves images), owned by the tenant's destination
    project, with the source image's properties (firmware, bus, machine type...): the
    destination server boots from it as a copy-on-write clone and stays image-booted."""
    server, _, project_id = server_and_project(settings, server_id, read, server=server)
    root = next((p for p in disk_pairs(server, settings.pools)
                 if p["kind"] == "rbd" and p["role"] == "root"), None)
    if root is None:
        raise RefusedError("server %s has no root disk of Nova's to register (it boots from "
                           "a volume)" % server["id"])
    registrar = settings.cloud(IMAGE_REGISTRATION).connect()
    existing = glance.find_registered_image(registrar, server["id"])
    if existing is not None and existing.status == "active":
        return outcome(False, **glance.image_facts(existing))
    source = settings.image(SOURCE, root["source"]["pool"], root["source"]["image"])
    target = settings.image(DESTINATION, root["destination"]["pool"],
                            root["destination"]["image"])
    if GLANCE_SNAPSHOT not in [s["name"] for s in target.snapshots()]:
        # only a copy checked at its newest snapshot is registered (the delta's check); its
        # sync snapshots go at the cleanup (drop_server_snapshots), after the window
        verify_sync(source, target, settings.copy_timeout, full=False)
        create_snapshot(target, GLANCE_SNAPSHOT, protect=True)
    base = source_image(settings, server.get("image_id"))
    properties = dict(base.get("properties") or {}, **{SOURCE_ID_KEY: server["id"]})
    if existing is None:
        existing = api("creating the image of server %s" % server["id"],
                       lambda: registrar.image.create_image(
                           name="%s-root" % server["name"], disk_format="raw",
                           container_format="bare",
                           min_disk=int((server.get("flavor") or {}).get("disk") or 0),
                           min_ram=int(base.get("min_ram") or 0), visibility="private",
                           owner=project_id, allow_duplicates=True,
                           **properties))
    url = "rbd://%s/%s/%s/%s" % (settings.fsid(DESTINATION), target.pool, target.name,
                                 GLANCE_SNAPSHOT)
    api("registering %s" % url, lambda: registrar.image.add_image_location(existing.id, url))
    registered = glance.wait_for_image(registrar, existing.id, 120, poll_interval=0.5)
    target.record(META_REGISTERED, {"image_id": registered.id})
    return outcome(True, location=url, **glance.image_facts(registered))


def server_and_project(settings: Settings, server_id: str, read: Optional[Reader],
                       conn: Any = None, server: Optional[Dict[str, Any]] = None
                       ) -> Tuple[Dict[str, Any], TenantMap, str]:
    """The source server's description (SERVER, when the caller has it), its tenant's
    mapping and destination project, refused when the tenant's infrastructure has not
    crossed yet."""
    server = server or describe(settings, server_id, conn)
    tmap = load_map(read, server["project_id"])
    project = tmap.get("project", server["project_id"])
    if project is None:
        raise RefusedError("the server's project is not at the destination: migrate the "
                           "tenant's infrastructure first")
    return server, tmap, project.destination_id


def source_image(settings: Settings, image_id: Optional[str]) -> Dict[str, Any]:
    """What the server's image says of the guest (properties, min RAM); {} when it is gone."""
    if not image_id:
        return {}
    conn = settings.cloud(SOURCE).connect()
    try:
        image = api("image %s" % image_id, lambda: conn.image.get_image(image_id))
    except NotFound:
        return {}
    params = glance.image_params(conn, image)
    # what the guest needs, not how the original was uploaded
    properties = {k: v for k, v in params["properties"].items()
                  if not k.startswith("owner_specified.")}
    return {"properties": properties, "min_ram": params["min_ram"]}


@timed
def manage_server_volumes(settings: Settings, server_id: str, read: Optional[Reader] = None,
                          server: Optional[Dict[str, Any]] = None,
                          root_target: str = "image") -> Dict[str, Any]:
    """The server's volumes, copied and checked (sync_server_disks final), managed in its
    tenant's destination project (the copies' sync snapshots dropped first: Cinder manages no
    image with snapshots), each as the volume procedure's manage_volume makes it; the root's
    volume image metadata (firmware, machine type, disk bus...) restored, so the guest boots
    the same way. With ROOT_TARGET volume, an image-booted server's root copy too, as its boot
    volume, with its image's properties. A re-run finds each managed volume."""
    server, _, project_id = server_and_project(settings, server_id, read, server=server)
    conn = settings.cloud(DESTINATION).connect()
    done = []
    changed = False
    for pair in disk_pairs(server, settings.pools, root_target=root_target):
        if pair["as"] != "volume":
            continue
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        target = settings.image(DESTINATION, pair["destination"]["pool"],
                                pair["destination"]["image"])
        if target.find() is not None:
            drop_snapshots(target, source)
        if pair["kind"] == "volume":
            managed = manage_volume(settings, pair["volume_id"],
                                    destination_project=project_id)
            disk = next(d for d in server["disks"] if d.get("volume_id") == pair["volume_id"])
            wanted = {k: str(v) for k, v in (disk.get("image_metadata") or {}).items()}
        else:       # Nova's root disk, as the boot volume
            managed = manage_disk(settings, target, source, project_id,
                                  name="%s-root" % server["name"],
                                  description="root disk of server %s (%s), moved by "
                                              "ceph_migrate" % (server["name"], server["id"]))
            wanted = {k: str(v) for k, v in (source_image(settings, server.get(
                "image_id")).get("properties") or {}).items()}
        if pair["role"] == "root" and wanted:
            volume = api("volume %s" % managed["volume_id"],
                         lambda: conn.block_storage.get_volume(managed["volume_id"]))
            have = dict(volume.volume_image_metadata or {})
            missing = {k: v for k, v in wanted.items() if have.get(k) != v}
            if missing:
                api("image metadata of volume %s" % volume.id,
                    lambda: conn.block_storage.set_volume_image_metadata(volume, **missing))
                managed["changed"] = True
        changed = changed or bool(managed["changed"])
        done.append(dict(managed, role=pair["role"],
                         source_volume_id=pair.get("volume_id"),
                         source_disk=None if pair["kind"] == "volume" else source.spec))
    return {"changed": changed, "volumes": done}


@timed
def create_server(settings: Settings, server_id: str, power_on: bool = True,
                  read: Optional[Reader] = None, write: Optional[Writer] = None,
                  dry_run: bool = False, timeout: float = 600,
                  server: Optional[Dict[str, Any]] = None,
                  root_target: str = "image", ephemeral: bool = False) -> Dict[str, Any]:
    """The destination server, made in its tenant's destination project on what the earlier
    steps brought (its ports, its managed volumes, its registered root image or, ROOT_TARGET
    volume, its root's boot volume), with the source's flavor, keypair, server group,
    availability zone, metadata, tags, description, user data and config drive, its volumes
    in the source's boot order with their delete-on-termination; with EPHEMERAL, its
    ephemeral disks the copies of the source's (carry_ephemeral_disks); left running or stopped
    (POWER_ON). Found again on a re-run (the mapping, else the pack's tag on it), never made
    twice."""
    source = settings.cloud(SOURCE).connect()
    server, tmap, project_id = server_and_project(settings, server_id, read, source, server)
    refs, missing = destination_refs(server, tmap, source_flavor_id(source, server))
    admin = settings.cloud(DESTINATION).connect()
    request, missing = _server_request(settings, admin, server, tmap, refs, project_id,
                                       missing + [m for m in server["refusals"]], root_target)
    wanted = {"name": server["name"], "description": server.get("description"),
              "metadata": server["metadata"], "tags": server["tags"],
              "flavor_name": (server.get("flavor") or {}).get("original_name"),
              "key_name": server.get("key_name")}

    def make(tags: List[str]) -> Any:
        if missing:
            raise RefusedError("; ".join(missing))
        return _boot(settings.cloud(DESTINATION).connect(project_id=project_id), admin,
                     project_id, dict(request, tags=tags), refs["keypair"], timeout)
    store = guarded(nova.server_store(admin, project_id, make), "server")
    result = reconcile("server", server["id"], wanted, store, tmap, dry_run=dry_run)
    if result.outcome == "conflict":
        raise RefusedError("the destination server of %s: %s (rollback_tenant removes a server "
                           "of the pack's)" % (server["id"], result.detail))
    if dry_run:
        return {"changed": False, "dry_run": True, "outcome": result.outcome,
                "request": request, "missing": missing}
    save_map(write, server["project_id"], tmap, read)
    made = _active(admin, str(result.destination_id), timeout)
    carried = carry_ephemeral_disks(settings, admin, server, made, timeout) if ephemeral \
        else None
    if carried is not None and carried["changed"]:     # stopped to take them: as it is now
        made = api("server %s" % made.id, lambda: admin.compute.get_server(made.id))
    # a server stopped to take its ephemeral disks starts again when the source ran
    made = _power(admin, made, power_on, timeout, start=ephemeral)
    return outcome(result.changed or bool(carried and carried["changed"]),
                   outcome=result.outcome, server_id=made.id, ephemeral=carried,
                   name=made.name, status=made.status, project_id=project_id,
                   ports=[n["port"] for n in request["networks"]],
                   image_id=request.get("image_id"),
                   volumes=[b["uuid"] for b in request.get("block_device_mapping") or []
                            if b["source_type"] == "volume"])


def _server_request(settings: Settings, admin: Any, server: Dict[str, Any], tmap: TenantMap,
                    refs: Dict[str, Any], project_id: str, missing: List[str],
                    root_target: str = "image") -> Tuple[Dict[str, Any], List[str]]:
    """Nova's request for the destination server, and what it still lacks (each said with the
    step that brings it)."""
    missing = [m for m in missing if not m.startswith("external network")]
    ports = []
    for port in server.get("ports") or []:
        entry = tmap.get("port", port["id"])
        if entry is None:
            missing.append("port %s is not at the destination: run prepare_ports" % port["id"])
        else:
            ports.append({"port": entry.destination_id})
    bdm: List[Dict[str, Any]] = []
    image_id = None
    if server["boots_from"] == "image" and root_target == "volume":
        root = _root_volume(settings, admin, server, project_id)
        if root is None:
            missing.append("the root disk is not managed as a volume at the destination: run "
                           "manage_server_volumes root_target=volume")
        else:   # kept when the server goes, as the other volumes are by default
            bdm.append({"uuid": root.id, "source_type": "volume", "destination_type": "volume",
                        "boot_index": 0, "delete_on_termination": False})
    elif server["boots_from"] == "image":
        image = glance.find_registered_image(
            settings.cloud(IMAGE_REGISTRATION).connect(), server["id"])
        if image is None or image.status != "active":
            missing.append("the root disk is not registered at the destination: run "
                           "register_server_image")
        else:
            image_id = image.id
    ephemerals = [d for d in server["disks"] if d["role"] == "ephemeral"]
    if len(ephemerals) > 1:     # booted with ephemeral block devices: the same, in order
        for disk in ephemerals:
            size = settings.image(SOURCE, disk["pool"], disk["image"]).info()["size"]
            bdm.append({"source_type": "blank", "destination_type": "local", "boot_index": -1,
                        "volume_size": int(size) >> 30, "delete_on_termination": True})
    for disk in server["disks"]:
        if disk["kind"] != "volume":
            continue
        volume = find_migrated_volume(settings, admin, project_id, disk["volume_id"])
        if volume is None:
            missing.append("volume %s is not managed at the destination: run "
                           "manage_server_volumes" % disk["volume_id"])
            continue
        bdm.append({"uuid": volume.id, "source_type": "volume", "destination_type": "volume",
                    "boot_index": 0 if disk["role"] == "root" else -1,
                    "delete_on_termination": disk["delete_on_termination"]})
    request: Dict[str, Any] = {
        "name": server["name"], "flavor_id": refs["flavor_id"], "networks": ports,
        "metadata": server["metadata"], "description": server.get("description"),
        "config_drive": server["config_drive"], "key_name": server.get("key_name")}
    if server.get("user_data"):
        request["user_data"] = server["user_data"]
    if image_id:
        request["image_id"] = image_id
        if bdm:     # the image's root first, then the volumes, as the source has them
            bdm.insert(0, {"uuid": image_id, "source_type": "image",
                           "destination_type": "local", "boot_index": 0,
                           "delete_on_termination": True})
    if bdm:
        request["block_device_mapping"] = bdm
    if refs["server_group_id"]:
        request["scheduler_hints"] = {"group": refs["server_group_id"]}
    if refs["availability_zone"]:
        request["availability_zone"] = refs["availability_zone"]
    return {k: v for k, v in request.items() if v is not None}, missing


def _root_volume(settings: Settings, admin: Any, server: Dict[str, Any],
                 project_id: str) -> Any:
    """The boot volume made of an image-booted server's root (root_target volume), or None."""
    root = next(d for d in server["disks"] if d["kind"] == "rbd" and d["role"] == "root")
    return find_managed_disk(settings, admin, project_id,
                             settings.image(SOURCE, root["pool"], root["image"]))


def _boot(scoped: Any, admin: Any, project_id: str, request: Dict[str, Any],
          keypair: Optional[str], timeout: float) -> Any:
    """Create the server as the pack's account scoped to the project (Nova makes a server in
    the token's project), with its keypair lent to that account for the call."""
    try:
        api("signing in to project %s" % project_id, scoped.authorize)
    except CephMigrateError as exc:
        raise RefusedError("the pack's account cannot act in the destination project (it needs "
                           "a role there, e.g. openstack role add --user <pack user> --project "
                           "<project> member): %s" % exc) from None
    lent = _lend_keypair(scoped, admin, keypair) if keypair else False
    try:
        return api("creating server %s" % request["name"],
                   lambda: scoped.compute.create_server(**request))
    finally:
        if lent:
            api("returning keypair %s" % request["key_name"],
                lambda: scoped.compute.delete_keypair(request["key_name"],
                                                      ignore_missing=True))


def _lend_keypair(scoped: Any, admin: Any, keypair: str) -> bool:
    """Nova reads key_name among the creating account's keypairs: the tenant user's keypair
    (KEYPAIR, user id:name at the destination) is copied to the pack's account for the call
    (True: lent, to be removed after). One of that name already there must be the same key."""
    user_id, name = keypair.split(":", 1)
    theirs = api("keypair %s" % keypair,
                 lambda: admin.compute.get_keypair(name, user_id=user_id))
    mine = api("keypair %s of the pack's account" % name,
               lambda: scoped.compute.find_keypair(name, ignore_missing=True))
    if mine is not None:
        if (mine.public_key or "").strip() != (theirs.public_key or "").strip():
            raise RefusedError("the pack's account at the destination has a keypair %s with "
                               "another key: rename or remove it" % name)
        return False
    api("lending keypair %s" % name, lambda: scoped.compute.create_keypair(
        name=name, public_key=theirs.public_key, type=theirs.type or "ssh"))
    return True


def _active(conn: Any, server_id: str, timeout: float) -> Any:
    """The destination server once Nova has built it (a re-run finds it still building)."""
    server = api("server %s" % server_id, lambda: conn.compute.get_server(server_id))
    if server.status not in ("ACTIVE", "SHUTOFF"):
        try:
            server = api("waiting for server %s to be ACTIVE" % server_id,
                         lambda: conn.compute.wait_for_server(server, status="ACTIVE",
                                                              failures=["ERROR"], interval=POLL,
                                                              wait=timeout))
        except CephMigrateError:
            server = api("server %s" % server_id, lambda: conn.compute.get_server(server_id))
            if server.status != "ERROR":
                raise
    if server.status == "ERROR":
        raise CephMigrateError("the destination server %s is in ERROR: %s (it carries the "
                               "pack's tag: rollback_tenant removes it)" % (
                                   server.id, (server.fault or {}).get("message", "no fault "
                                                                       "given")))
    return server


def _power(conn: Any, server: Any, power_on: bool, timeout: float, start: bool = False) -> Any:
    """The destination server left as the source was: running, or stopped (a stopped one
    started only with START: the pack stopped it itself)."""
    if power_on and start and server.status == "SHUTOFF":
        api("starting server %s" % server.id, lambda: conn.compute.start_server(server))
        return api("waiting for server %s to run" % server.id,
                   lambda: conn.compute.wait_for_server(server, status="ACTIVE",
                                                        failures=["ERROR"], interval=POLL,
                                                        wait=timeout))
    if power_on or server.status == "SHUTOFF":
        return server
    api("stopping server %s" % server.id, lambda: conn.compute.stop_server(server))
    return api("waiting for server %s to stop" % server.id, lambda: conn.compute.wait_for_server(
        server, status="SHUTOFF", failures=["ERROR"], interval=POLL, wait=timeout))


# the counterpart's blank ephemeral disk, renamed aside while the copy takes its name (still
# named after the counterpart: Nova removes it with the server if the pack cannot)
BLANK = ".ceph_migrate-blank"


def carry_ephemeral_disks(settings: Settings, admin: Any, server: Dict[str, Any], made: Any,
                          timeout: float) -> Optional[Dict[str, Any]]:
    """The counterpart MADE's ephemeral disks, blank from its flavor (or the block devices the
    source was booted with), replaced by the checked copies of the source's (sync_server_disks
    ephemeral=true), each by its name: the counterpart stopped (Nova opens the disk it finds
    when it starts a server, it makes none), a blank disk renamed aside, the copy renamed into
    its place (the same pool), the blank removed; everything checked before the first move,
    each move found again on a re-run. Only before the source is released: a counterpart in
    service keeps its disks. None when the source has no ephemeral disk."""
    pairs = [p for p in disk_pairs(server, settings.pools, ephemeral=True) if p["as"] == "disk"]
    if not pairs:
        return None
    cli = settings.rbd(DESTINATION)
    pool = pairs[0]["destination"]["pool"]
    listed = api("RBD images of %s" % pool, lambda: cli.run("ls", pool)) or []
    own = [n for n in listed if rbd_role(made.id, n) == "ephemeral"]
    aside = [n[:-len(BLANK)] for n in listed if n.startswith(made.id) and n.endswith(BLANK)]

    def image(name: str) -> RbdImage:
        return settings.image(DESTINATION, pool, name)
    work = []
    for pair in pairs:
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        copy = settings.image(DESTINATION, pool, pair["destination"]["image"])
        name = made.id + source.name[len(server["id"]):]
        if name not in own + aside and len(pairs) == 1 and len(set(own + aside)) == 1:
            name = (own + aside)[0]    # the one disk, named otherwise by the destination's Nova
        placed = (image(name).recorded(META_COPY_OF) or {}).get("source") == where(source) \
            if name in own else False
        work.append((source, copy, name, placed))
    moves = [w for w in work if not w[3]]
    if moves and any(t.startswith(MOVED_TAG) for t in server["tags"]):
        raise RefusedError("server %s is released, its counterpart %s in service: its "
                           "ephemeral disks are not replaced" % (server["id"], made.id))
    for source, copy, name, _ in moves:     # every check before the first move
        if name not in own + aside:
            raise RefusedError("the destination server %s has no ephemeral disk %s to take the "
                               "copy of %s (its ephemeral disks: %s)" % (
                                   made.id, name, source.spec, ", ".join(own) or "none"))
        _checked_copy(source, copy, timeout)
        if name not in aside and int(image(name).info()["size"]) != int(copy.info()["size"]):
            raise RefusedError("the destination server's ephemeral disk %s is not the size of "
                               "the source's copy %s" % (image(name).spec, copy.spec))
    moved = []
    if any(name not in aside for _, _, name, _ in moves):
        _power(admin, made, False, timeout)     # its disks are free only when it is off
    for source, copy, name, _ in moves:
        if name not in aside:
            cli.run_text("rename", image(name).spec, image(name + BLANK).spec)
            moved.append("%s set aside" % image(name).spec)
        # Nova removes no disk with snapshots: the copy's sync snapshots go first
        drop_snapshots(copy, source)
        cli.run_text("rename", copy.spec, image(name).spec)
        moved.append("%s -> %s" % (copy.spec, image(name).spec))
    for name in set(aside) | {name for _, _, name, _ in moves}:
        remove_when_released(image(name + BLANK), timeout=min(timeout, 120))
        moved.append("%s removed (blank)" % image(name + BLANK).spec)
    return outcome(bool(moved), disks=[image(name).spec for _, _, name, _ in work],
                   sources=[source.spec for source, _, _, _ in work], moved=moved)


def _checked_copy(source: RbdImage, copy: RbdImage, timeout: float) -> None:
    """The copy matches the source at its newest sync snapshot (its delta checked now, or
    checked before and its snapshots since dropped)."""
    if copy.find() is None:
        raise RefusedError("the copy %s of ephemeral disk %s is not at the destination: run "
                           "sync_server_disks ephemeral=true" % (copy.spec, source.spec))
    if common_snapshots(source, copy):
        verify_sync(source, copy, timeout, full=False)
        return
    checked = source.recorded(META_VERIFIED) or {}
    newest = list(sync_snapshots(source))[-1:]
    if (checked.get("destination"), checked.get("copy_id"), [checked.get("snapshot")]) != (
            where(copy), copy.info().get("id"), newest):
        raise RefusedError("the copy %s is not checked against %s at its newest snapshot: run "
                           "sync_server_disks final=true ephemeral=true" % (copy.spec,
                                                                            source.spec))


@timed
def cutover_server(settings: Settings, server_id: str, read: Optional[Reader] = None,
                   write: Optional[Writer] = None, timeout: float = 600,
                   root_target: str = "image", ephemeral: bool = False) -> Dict[str, Any]:
    """The cutover window as one step, so that only the work sits in it (a workflow pays a
    runner's start for each step): the source stopped, the last delta of every disk copied and
    checked, the root registered, the volumes managed, the counterpart created (with
    EPHEMERAL, on its ephemeral disk's copy; running when the source ran). Each part is the
    step of its name, idempotent: a re-run goes on where one stopped, and a failure says which
    part and what was done before it."""
    done: Dict[str, Any] = {}

    def part(name: str, call: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        try:
            done[name] = call()
        except CephMigrateError as exc:
            raise StepFailed("at %s: %s" % (name, exc),
                             {"failed_at": name, "done": dict(done)}) from None
        return done[name]
    stopped = part("stop", lambda: stop_source_server(settings, server_id, timeout))
    server = describe(settings, server_id)      # once, for every part after the stop
    synced = part("final_sync", lambda: sync_server_disks(
        settings, server_id, final=True, ephemeral=ephemeral, server=server,
        root_target=root_target, read=read))
    pairs = disk_pairs(server, settings.pools, root_target=root_target)
    if any(p["kind"] == "rbd" and p["as"] == "image" for p in pairs):
        part("register", lambda: register_server_image(settings, server_id, read, server))
    if any(p["as"] == "volume" for p in pairs):
        part("manage", lambda: manage_server_volumes(settings, server_id, read, server,
                                                     root_target))
    created = part("create", lambda: create_server(
        settings, server_id, stopped["was_running"], read, write, timeout=timeout,
        server=server, root_target=root_target, ephemeral=ephemeral))
    window = {"seconds": round(created["ended_at"] - stopped["requested_at"], 1),
              "bytes": synced["bytes"]}
    window.update((name, (done.get(name) or {}).get("seconds"))
                  for name in ("stop", "final_sync", "register", "manage", "create"))
    window["text"] = "%s s (%s)" % (window["seconds"], ", ".join(
        "%s %s s" % (name.replace("_", " "), window[name])
        for name in ("stop", "final_sync", "register", "manage", "create")
        if window[name] is not None))
    return outcome(True, downtime=window, **done)


def drop_server_snapshots(settings: Settings, server_id: str,
                          root_target: str = "image") -> Dict[str, Any]:
    """The cleanup after a server's cutover: the sync snapshots the pack took of its source
    disks, ephemeral ones included whether carried or not (Nova and Cinder delete no disk with
    snapshots; only those the pack recorded go) and those its root's copy still carries under
    Glance's ``snap``; the disks themselves are kept."""
    server = describe(settings, server_id)
    dropped = []
    for pair in disk_pairs(server, settings.pools, True, root_target):
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        copy = settings.image(DESTINATION, pair["destination"]["pool"],
                              pair["destination"]["image"])
        # the root's copy (Glance's data now) first: its snapshots are named on the source
        # (a copy managed as a volume lost them before the manage, and its name)
        for image in ([copy] if pair["as"] == "image" else []) + [source]:
            dropped += ["%s@%s" % (image.spec, name) for name in drop_snapshots(image, source)]
    return outcome(bool(dropped), dropped=dropped)


LOCK_REASON = "migrated by ceph_migrate to %s"


@timed
def stop_source_server(settings: Settings, server_id: str, timeout: float = 600
                       ) -> Dict[str, Any]:
    """Stop the source server for its cutover. A running one is tagged first (the tag is the
    record that it ran: the destination then runs, and a rollback starts it again); one
    already off is left as it is."""
    requested_at = round(time.time(), 2)
    conn = settings.cloud(SOURCE).connect()
    server = api("server %s" % server_id, lambda: conn.compute.get_server(server_id))
    changed = False
    if server.status == "ACTIVE":
        if STOPPED_TAG not in (server.tags or []):
            api("tagging server %s" % server.id,
                lambda: conn.compute.add_tag_to_server(server, STOPPED_TAG))
        api("stopping server %s" % server.id, lambda: conn.compute.stop_server(server))
        changed = True
    elif server.status != "SHUTOFF":
        raise RefusedError("server %s is %s: it is stopped for its cutover only from ACTIVE or "
                           "SHUTOFF" % (server.id, server.status))
    stopped = api("waiting for server %s to stop" % server.id,
                  lambda: conn.compute.wait_for_server(server, status="SHUTOFF",
                                                       failures=["ERROR"], interval=POLL,
                                                       wait=timeout))
    was_running = changed or STOPPED_TAG in (stopped.tags or server.tags or [])
    return outcome(changed, server_id=server.id, status=stopped.status,
                   was_running=was_running, requested_at=requested_at)


def release_source_server(settings: Settings, server_id: str,
                          read: Optional[Reader] = None) -> Dict[str, Any]:
    """Once its counterpart stands at the destination: the source server locked (the reason
    names the counterpart) and tagged with where it went; it is kept, stopped."""
    conn = settings.cloud(SOURCE).connect()
    server = api("server %s" % server_id, lambda: conn.compute.get_server(server_id))
    tmap = load_map(read, server.project_id)
    entry = tmap.get("server", server.id)
    admin = settings.cloud(DESTINATION).connect()
    found = nova.live_server(admin.compute, entry.destination_id) if entry else None
    if found is None or found.status not in ("ACTIVE", "SHUTOFF") or \
            source_tag(server.id) not in (found.tags or []):
        raise RefusedError("server %s has no counterpart standing at the destination: the "
                           "source is released only after create_server" % server.id)
    changed = False
    if server.status != "SHUTOFF":
        raise RefusedError("server %s is %s: stop it first (stop_source_server)"
                           % (server.id, server.status))
    if not server.is_locked:
        api("locking server %s" % server.id, lambda: conn.compute.lock_server(
            server, locked_reason=LOCK_REASON % found.id))
        changed = True
    moved = MOVED_TAG + found.id
    if moved not in (server.tags or []):
        api("tagging server %s" % server.id,
            lambda: conn.compute.add_tag_to_server(server, moved))
        changed = True
    return outcome(changed, server_id=server.id, destination_server_id=found.id,
                   locked=True, tag=moved)


def restore_source_server(settings: Settings, server_id: str, timeout: float = 600
                          ) -> Dict[str, Any]:
    """The rollback of the source side: the lock and tag release_source_server set go (a lock
    with another reason stays: someone else's), and a server the pack stopped runs again."""
    conn = settings.cloud(SOURCE).connect()
    server = api("server %s" % server_id, lambda: conn.compute.get_server(server_id))
    done = []
    for tag in [t for t in server.tags or [] if t.startswith(MOVED_TAG)]:
        if server.is_locked and server.locked_reason == LOCK_REASON % tag[len(MOVED_TAG):]:
            api("unlocking server %s" % server.id, lambda: conn.compute.unlock_server(server))
            done.append("unlocked")
        api("untagging server %s" % server.id,
            lambda: conn.compute.remove_tag_from_server(server, tag))
        done.append("untagged")
    if STOPPED_TAG in (server.tags or []):
        if server.status == "SHUTOFF":
            api("starting server %s" % server.id, lambda: conn.compute.start_server(server))
            api("waiting for server %s to run" % server.id,
                lambda: conn.compute.wait_for_server(server, status="ACTIVE",
                                                     failures=["ERROR"], interval=POLL,
                                                     wait=timeout))
            done.append("started")
        api("untagging server %s" % server.id,
            lambda: conn.compute.remove_tag_from_server(server, STOPPED_TAG))
    return outcome(bool(done), server_id=server.id, done=done)
