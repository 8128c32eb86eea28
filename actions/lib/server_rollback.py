"""A server's migration undone, destination first: its counterpart, the floating IPs and ports
made for it, its managed volumes, its registered root image and the disk copies, then the
source as it was (lock, tags, power) without the sync snapshots the pack took. Each thing goes
only on the record that proves the pack made it (the tag on the server, floating IP and port;
the copy's own records for volumes, images and copies); anything else is kept and said."""
from typing import Any, Callable, Dict, List, Optional

from . import neutron
from .cinder import find_managed_disk, find_migrated_volume, wait_for_volume
from .clouds import api
from .diff_sync import drop_snapshots
from .errors import CephMigrateError
from .glance import find_registered_image
from .rbd_image import META_REGISTERED, outcome
from .rollback import remove_copy, rollback_destination
from .server_migration import server_and_project, restore_source_server
from .server_plan import disk_pairs
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings
from .tenant_infra import save_map, SERVICES
from .waiting import Reader, Writer


def rollback_server(settings: Settings, server_id: str, read: Optional[Reader] = None,
                    write: Optional[Writer] = None, dry_run: bool = False,
                    timeout: float = 300) -> Dict[str, Any]:
    """Undo the server procedure for SERVER_ID (every step is safe to re-run). DRY_RUN says
    what would go."""
    server, tmap, project_id = server_and_project(settings, server_id, read)
    admin = settings.cloud(DESTINATION).connect()
    done: List[str] = []
    kept: List[str] = []

    def step(what: str, act: Callable[[], Any]) -> None:
        if dry_run:
            done.append("would undo: " + what)
            return
        act()

    # 1. the counterpart (its root clone goes with it; its volumes are detached), then its
    # floating IPs and its ports, each by the service that removes that kind
    ports = server["ports"]
    for kind, source_ids in (("server", [server["id"]]),
                             ("floating_ip", [ip["id"] for p in ports for ip in p["floating_ips"]]),
                             ("port", [p["id"] for p in ports])):
        for source_id in source_ids:
            mapped = tmap.get(kind, source_id)
            if mapped is None:
                continue
            said = SERVICES.get(kind, neutron).remove(admin, kind, mapped.destination_id,
                                                      source_id, dry_run)
            (done if said in ("removed", "would be removed", "gone") else kept).append(
                "%s %s: %s" % (kind.replace("_", " "), mapped.destination_id, said))
            if said in ("removed", "gone") and not dry_run:
                tmap.forget(kind, source_id)
    if not dry_run:
        save_map(write, server["project_id"], tmap, read)
    # 3. the disks at the destination: managed volumes, the registered root or the root's
    # boot volume (either root_target), the copies
    registrar = settings.cloud(IMAGE_REGISTRATION).connect()
    pairs = disk_pairs(server, settings.pools, ephemeral=True) + [
        p for p in disk_pairs(server, settings.pools, root_target="volume")
        if p["kind"] == "rbd"]
    for pair in pairs:
        source = settings.image(SOURCE, pair["source"]["pool"], pair["source"]["image"])
        copy = settings.image(DESTINATION, pair["destination"]["pool"],
                              pair["destination"]["image"])
        if pair["kind"] == "volume":
            volume = find_migrated_volume(settings, admin, project_id, pair["volume_id"])
            if volume is not None:
                step("volume %s (managed from %s) deleted" % (volume.id, pair["volume_id"]),
                     lambda: _delete_volume(settings, admin, volume, pair["volume_id"],
                                            project_id, timeout, done))
        elif pair["as"] == "volume":
            volume = find_managed_disk(settings, admin, project_id, source)
            if volume is not None:
                step("volume %s (the server's root) deleted" % volume.id,
                     lambda: _delete_root_volume(admin, volume, timeout, done))
        elif pair["as"] == "image" and copy.find() is not None:
            owner = (copy.recorded(META_REGISTERED) or {}).get("image_id")
            image = find_registered_image(registrar, server["id"])
            if image is not None and image.id == owner:
                step("image %s (the server's root) deleted" % image.id,
                     lambda: _delete_image(registrar, image.id, done))
        if copy.find() is not None:
            step("copy %s removed" % copy.spec, lambda: done.extend(
                remove_copy(copy, source, source)["removed"]))
        if source.find() is not None:
            step("sync snapshots of %s dropped" % source.spec, lambda: done.extend(
                "snapshot %s@%s dropped" % (source.spec, s)
                for s in drop_snapshots(source, source)))
    # 4. the source server as it was
    step("source server %s unlocked, untagged and started again if the pack stopped it"
         % server["id"], lambda: done.extend(
             "source server: %s" % d for d in restore_source_server(
                 settings, server["id"], timeout)["done"]))
    return outcome(not dry_run and bool(done), dry_run=dry_run, undone=done, kept=kept)


def _delete_volume(settings: Settings, admin: Any, volume: Any, source_id: str,
                   project_id: str, timeout: float, done: List[str]) -> None:
    """A managed volume, once Nova has let it go (the deleted server detaches it)."""
    if volume.status != "available":
        try:
            wait_for_volume(admin, volume.id, timeout)
        except CephMigrateError:
            pass    # rollback_destination says why it cannot
    done.extend(rollback_destination(settings, source_id, project_id,
                                     delete_data=True)["undone"])


def _delete_root_volume(admin: Any, volume: Any, timeout: float, done: List[str]) -> None:
    """The boot volume managed from the root's copy (proven by the copy's record), once the
    deleted counterpart let it go; Cinder removes its RBD image with it."""
    if volume.status != "available":
        volume = wait_for_volume(admin, volume.id, timeout)
    api("deleting volume %s" % volume.id, lambda: admin.block_storage.delete_volume(volume.id))
    api("volume %s going" % volume.id, lambda: admin.block_storage.wait_for_delete(
        volume, interval=1, wait=timeout))
    done.append("deleted volume %s (the server's root)" % volume.id)


def _delete_image(registrar: Any, image_id: str, done: List[str]) -> None:
    """The root's Glance image (Glance removes its snapshot; the copy itself then goes as a
    copy of the pack's)."""
    api("deleting image %s" % image_id, lambda: registrar.image.delete_image(image_id))
    done.append("deleted image %s" % image_id)
