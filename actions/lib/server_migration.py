"""The server procedure's steps at the destination, each found again on a re-run through the
tenant's mapping (lib.tenant's one rule): first the server's ports, made before the cutover
with the source's MAC and addresses, so the window holds only what must wait for the stop."""
import time
from typing import Any, Dict, List, Optional, Tuple

from . import glance
from .cinder import manage_volume
from .clouds import api
from .copying import create_snapshot
from .errors import CephMigrateError, NotFound, RefusedError
from .image_transfer import GLANCE_SNAPSHOT
from .names import SOURCE_ID_KEY
from .rbd_image import META_REGISTERED, outcome
from .neutron import address_pairs, PORT_PARAMS, port_store
from .diff_sync import drop_snapshots, presync, sync_round, verify_sync
from .server_plan import destination_refs, disk_pairs
from .servers import describe
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings
from .tenant import reconcile, summary
from .tenant_infra import guarded, load_map, save_map
from .waiting import Reader, Writer

PORT_KEYS = PORT_PARAMS + ("tags",)


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
    store = guarded(port_store(settings.cloud(DESTINATION).connect(), refs["project_id"]),
                    "port")
    results = []
    for port in refs["ports"]:
        wanted = {k: port[k] for k in PORT_KEYS}
        wanted["allowed_address_pairs"] = address_pairs(wanted["allowed_address_pairs"])
        wanted["security_group_ids"] = sorted(wanted["security_group_ids"])
        results.append(reconcile("port", port["source_id"], wanted, store, tmap,
                                 dry_run=dry_run, label=port["mac_address"]))
    if not dry_run:
        save_map(write, server["project_id"], tmap)
    ports: List[Dict[str, Any]] = [r.as_dict() for r in results]
    return {"changed": not dry_run and any(r.changed for r in results), "dry_run": dry_run,
            "summary": summary(results), "ports": ports,
            "project_id": refs["project_id"]}


def sync_server_disks(settings: Settings, server_id: str, final: bool = False,
                      ephemeral: bool = False, max_rounds: int = 3) -> Dict[str, Any]:
    """Bring each carried disk's copy up to a new snapshot of it (disk_pairs): rounds while
    the server runs, then the full check; or (FINAL, once it is stopped) one last round per
    disk and the check of the delta it shipped. The copies are the pack's (recorded), found
    again on a re-run."""
    server = describe(settings, server_id)
    pairs = disk_pairs(server, settings.pools, ephemeral)
    done = []
    # every disk within the one copy timeout (under the action's own StackStorm timeout)
    deadline = time.monotonic() + settings.copy_timeout

    def left() -> float:
        if time.monotonic() >= deadline:
            raise CephMigrateError("the disks took longer than copy.timeout (%ss): re-run to "
                                   "go on (each copy continues from its last snapshot)"
                                   % settings.copy_timeout)
        return deadline - time.monotonic()
    for pair in pairs:
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        target = settings.image(DESTINATION, pair["destination"]["pool"],
                                pair["destination"]["image"])
        if final:
            shipped = sync_round(source, target, settings.copy_features, left(), prune=False)
            checked = verify_sync(source, target, left(), full=False)
            done.append(dict(pair, snapshot=shipped["snapshot"], bytes=shipped["bytes"],
                             verified=checked["verified"], hashed_bytes=checked.get(
                                 "hashed_bytes")))
        else:
            rounds = presync(source, target, settings.copy_features, left(),
                             max_rounds=max_rounds)
            # the full check, before the window: inside it only the last delta is checked
            checked = verify_sync(source, target, left(), full=True)
            done.append(dict(pair, snapshot=rounds["snapshot"], bytes=rounds["bytes"],
                             rounds=len(rounds["rounds"]), verified=checked["verified"]))
    return {"changed": bool(done), "final": final, "disks": done,
            "bytes": sum(d["bytes"] for d in done)}


def register_server_image(settings: Settings, server_id: str,
                          read: Optional[Reader] = None) -> Dict[str, Any]:
    """The server's root disk, copied and checked (sync_server_disks final), registered at the
    destination Glance as the server's own image by its rbd:// location (its sync snapshots
    dropped, ``snap`` protected, as Glance serves images), owned by the tenant's destination
    project, with the source image's properties (firmware, bus, machine type...): the
    destination server boots from it as a copy-on-write clone and stays image-booted."""
    server, project_id = _server_and_project(settings, server_id, read)
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
        # only a copy checked at its newest snapshot is registered (the delta's check)
        verify_sync(source, target, settings.copy_timeout, full=False)
        drop_snapshots(target, source)
        create_snapshot(target, GLANCE_SNAPSHOT, protect=True)
    base = _source_image(settings, server.get("image_id"))
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
    registered = glance.wait_for_image(registrar, existing.id, 120)
    target.record(META_REGISTERED, {"image_id": registered.id})
    return outcome(True, location=url, **glance.image_facts(registered))


def _server_and_project(settings: Settings, server_id: str, read: Optional[Reader]
                        ) -> Tuple[Dict[str, Any], str]:
    """The source server's description and its tenant's destination project (the mapping's),
    refused when the tenant's infrastructure has not crossed yet."""
    server = describe(settings, server_id)
    project = load_map(read, server["project_id"]).get("project", server["project_id"])
    if project is None:
        raise RefusedError("the server's project is not at the destination: migrate the "
                           "tenant's infrastructure first")
    return server, project.destination_id


def _source_image(settings: Settings, image_id: Optional[str]) -> Dict[str, Any]:
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


def manage_server_volumes(settings: Settings, server_id: str,
                          read: Optional[Reader] = None) -> Dict[str, Any]:
    """The server's volumes, copied and checked (sync_server_disks final), managed in its
    tenant's destination project (the copies' sync snapshots dropped first: Cinder manages no
    image with snapshots), each as the volume procedure's manage_volume makes it; the root's
    volume image metadata (firmware, machine type, disk bus...) restored, so the guest boots
    the same way. A re-run finds each managed volume."""
    server, project_id = _server_and_project(settings, server_id, read)
    conn = settings.cloud(DESTINATION).connect()
    done = []
    changed = False
    for pair, disk in zip(*_volume_pairs(server, settings)):
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        target = settings.image(DESTINATION, pair["destination"]["pool"],
                                pair["destination"]["image"])
        if target.find() is not None:
            drop_snapshots(target, source)
        managed = manage_volume(settings, pair["volume_id"],
                                destination_project=project_id)
        wanted = {k: str(v) for k, v in (disk.get("image_metadata") or {}).items()}
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
        done.append(dict(managed, role=pair["role"], source_volume_id=pair["volume_id"]))
    return {"changed": changed, "volumes": done}


def _volume_pairs(server: Dict[str, Any], settings: Settings) -> Any:
    pairs = [p for p in disk_pairs(server, settings.pools) if p["kind"] == "volume"]
    disks = {d["volume_id"]: d for d in server["disks"] if d["kind"] == "volume"}
    return pairs, [disks[p["volume_id"]] for p in pairs]
