"""Undo a failed or rejected migration. What the pack made at the destination goes (the
volume, the registered image, the copies), the source image gets its primary role and features
back and stops being mirrored. Source data is never deleted: the only thing removed at the
source is the Glance image the boot procedure itself uploaded from the volume."""
from typing import Any, Callable, Dict, List, Optional

from . import names
from .cinder import describe_volume, find_migrated_volume, volume_image
from .clouds import api
from .copying import TMP_SUFFIX
from .diff_sync import recorded_snapshots
from .errors import CephMigrateError, RefusedError
from .glance import find_registered_image, find_source_image
from .in_place import drop_verify_snapshot
from .keystone import project_for, resolve_project
from .rbd_image import (META_ADDED_FEATURES, META_COPY_OF, META_COPYING, META_REGISTERED,
                        META_VERIFIED, RbdImage, facts, mirroring, outcome, where)
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings

PROCEDURES = ("data", "boot")


def plan_rollback(settings: Settings, volume_id: str, procedure: str = "data",
                  destination_project: Optional[str] = None) -> Dict[str, Any]:
    """What a rollback of ``volume_id``'s migration would undo (read-only).

    ``image``/``pool`` name the source RBD image whose mirroring is undone (None when the boot
    procedure never uploaded one), ``copy_pool``/``copy_image`` the destination copy.
    """
    vid = names.volume_id(volume_id)
    if procedure not in PROCEDURES:
        raise RefusedError("procedure must be one of %s, not %r"
                           % (", ".join(PROCEDURES), procedure))
    pools = settings.pools
    undo: List[str] = []
    report: Dict[str, Any] = {"volume_id": vid, "procedure": procedure, "image_id": None,
                              "destination_project": None, "destination_volume": None,
                              "registered_image": None}
    volume = None
    if settings.clouds:
        volume = describe_volume(settings, vid)
        dest = settings.cloud(DESTINATION).connect()
        project = project_for(dest, volume, destination_project)
        report["destination_project"] = project
        made = find_migrated_volume(settings, dest, project["id"], vid)
        if made is not None:
            report["destination_volume"] = {"id": made.id, "status": made.status}
            in_place = volume_image(settings, made.id).pool == pools.mirrored_cinder
            undo.append("delete destination volume %s (%s)%s" % (
                made.id, made.status, ": the promoted replica, with what was written to it "
                "since the cutover" if in_place else ""))
    if procedure == "boot":
        uploaded = find_source_image(settings, volume) if volume else None
        image = report["image_id"] = uploaded.id if uploaded is not None else None
        pool, copy_pool = pools.mirrored_glance, pools.destination_glance
        if image:
            registered = find_registered_image(settings.cloud(IMAGE_REGISTRATION).connect(), image)
            if registered is not None:
                report["registered_image"] = registered.id
                undo.append("delete destination image %s" % registered.id)
    else:
        image, pool, copy_pool = (names.cinder_image(vid), pools.mirrored_cinder,
                                  pools.destination_cinder)
    report.update(image=image, pool=pool, copy_pool=copy_pool, copy_image=image,
                  source_primary=True, source=None)
    if image:
        source = settings.image(SOURCE, pool, image)
        info = source.find()
        if info is not None:
            state = mirroring(info)
            report["source"] = facts(info)
            report["source_primary"] = state["primary"] is not False
            if state["primary"] is False:
                replica = settings.image(DESTINATION, pool, image)
                promoted = replica.find()
                if promoted is not None and mirroring(promoted)["primary"] and \
                        (replica.recorded(META_COPY_OF) or {}).get("made_as") == where(replica):
                    # placement promote, not managed yet: the promoted replica is the copy
                    report.update(copy_pool=pool, copy_image=image)
                undo.append("demote the destination replica (or remove it where it was "
                            "promoted in place), promote %s again" % source.spec)
            if state["state"] != "disabled":
                undo.append("disable mirroring of %s (the replica goes)" % source.spec)
            added = source.recorded(META_ADDED_FEATURES)
            if added:
                undo.append("remove the features the pack added: %s" % ", ".join(added))
            snapshots = recorded_snapshots(source)
            if snapshots:
                undo.append("remove the sync snapshots the pack took of %s: %s"
                            % (source.spec, ", ".join(snapshots)))
        for name in (image, image + TMP_SUFFIX):
            if settings.image(DESTINATION, report["copy_pool"], name).exists():
                undo.append("remove the copy %s/%s at the destination"
                            % (report["copy_pool"], name))
        if procedure == "boot":
            undo.append("delete the image %s uploaded at the source" % image)
    report["undo"] = undo or ["nothing: no trace of this migration"]
    return report


def rollback_destination(settings: Settings, source_id: str, destination_project: str,
                         delete_data: bool = False, source_image_id: Optional[str] = None,
                         timeout: float = 120) -> Dict[str, Any]:
    """Undo what the pack created at the destination for ``source_id``; never the source.

    A managed volume is unmanaged (its RBD image stays) unless ``delete_data`` (then deleted,
    and waited for: a clone must be gone before its image can go). Images registered from
    ``source_id`` or ``source_image_id`` are deleted from Glance (the copy in the Glance pool
    goes with them). Tags are hints: a volume goes only when its RBD image proves the pack made
    it, an image only when the copy it stands on records its registration.
    """
    admin = settings.cloud(DESTINATION).connect()
    project_id = resolve_project(admin, destination_project)["id"]
    done: List[str] = []
    kept: List[str] = []
    volume = find_migrated_volume(settings, admin, project_id, source_id)
    if volume is not None:
        if volume.status == "in-use":
            raise RefusedError("volume %s is attached at the destination: detach it first"
                               % volume.id)
        if delete_data:
            drop_verify_snapshot(volume_image(settings, volume.id))
            api("deleting %s" % volume.id, lambda: admin.block_storage.delete_volume(volume.id))
            api("waiting for %s to go" % volume.id, lambda: admin.block_storage.wait_for_delete(
                volume, interval=1, wait=timeout))
            done.append("deleted volume %s" % volume.id)
        else:
            api("unmanaging %s" % volume.id,
                lambda: admin.block_storage.unmanage_volume(volume.id))
            done.append("unmanaged volume %s (RBD image %s kept)"
                        % (volume.id, names.cinder_image(volume.id)))
    registrar = settings.cloud(IMAGE_REGISTRATION).connect()
    for marker in filter(None, {source_id, source_image_id}):
        image = find_registered_image(registrar, marker)
        if image is None:
            continue
        copy = settings.image(DESTINATION, settings.pools.destination_glance, marker)
        if (copy.find() and copy.recorded(META_REGISTERED) or {}).get("image_id") != image.id:
            kept.append("image %s: tagged with %s, but no copy of the pack records it"
                        % (image.id, marker))
            continue
        api("deleting image %s" % image.id, lambda: registrar.image.delete_image(image.id))
        done.append("deleted image %s" % image.id)
    return outcome(bool(done), undone=done, kept=kept)


def remove_copy(image: RbdImage, replica: RbdImage, source: RbdImage,
                registered: Optional[Callable[[str], bool]] = None) -> Dict[str, Any]:
    """Remove a copy the pack made of ``replica`` (the mirror of ``source``), snapshots
    included, and the half-written twin a killed copy left. Ownership is proven by records
    only the pack writes, never by a name: the copy's ``copy_of`` must name this replica and
    the name the copy was made under (``cinder manage`` renames it: it is a tenant's volume
    then); a copy registered in Glance goes only once ``registered`` (image id -> still
    there?) says that image is gone; a partial image only when the record ``copy_image``
    leaves on the primary names it. Anything else is refused (or, a partial, kept)."""
    removed: List[str] = []
    kept: List[str] = []
    partial = RbdImage(image.cli, image.pool, image.name + TMP_SUFFIX)
    if partial.exists():
        holders = [i for i in (source, replica) if i.exists()]
        if any(i.recorded(META_COPYING) == where(partial) for i in holders):
            _purge(partial)
            removed.append(partial.spec)
        else:
            kept.append("%s (no record of ceph_migrate names it: not ours to remove)"
                        % partial.spec)
    info = image.find()
    if info is not None:
        made = image.recorded(META_COPY_OF)
        if not made:
            raise RefusedError("%r is not a copy made by ceph_migrate: not removed" % image)
        if made.get("source") not in (where(replica), where(source)):
            raise RefusedError("%r is a copy of %s, not of %s: not removed"
                               % (image, made.get("source"), where(replica)))
        if made.get("made_as") != where(image):
            raise RefusedError("%r was made as %s and renamed since (cinder manage renames what "
                               "it takes over): it belongs to the destination cloud now, not "
                               "removed" % (image, made.get("made_as") or "an unrecorded name"))
        owner = (image.recorded(META_REGISTERED) or {}).get("image_id")
        if owner and (registered is None or registered(owner)):
            raise RefusedError("%r is the data of Glance image %s at the destination: delete that "
                               "image first (rollback_destination), not removed" % (image, owner))
        state = mirroring(info)
        promoted = made.get("placement") == "promote" and state["primary"] is True
        if state["state"] != "disabled" and not promoted:
            raise RefusedError("%r is mirrored: not a plain copy, not removed" % image)
        if image.watchers():
            raise RefusedError("%r is in use (it has watchers): not removed" % image)
        if state["state"] != "disabled":     # the replica the pack promoted in place
            image.cli.run_text("mirror", "image", "disable", image.spec)
        _purge(image)
        removed.append(image.spec)
        # a verification of a copy that is gone proves nothing any more
        if source.find() is not None and \
                (source.recorded(META_VERIFIED) or {}).get("destination") == where(image):
            source.forget(META_VERIFIED)
    return outcome(bool(removed), removed=removed, kept=kept)


def _purge(image: RbdImage) -> None:
    for snap in image.snapshots():
        if (snap.get("namespace") or {}).get("type", "user") != "user":
            continue
        spec = "%s@%s" % (image.spec, snap["name"])
        if str(snap.get("protected")).lower() == "true":
            if image.cli.run("children", spec):
                raise RefusedError("%s has clones: delete the volumes made from it first" % spec)
            image.cli.run_text("snap", "unprotect", spec)
        image.cli.run_text("snap", "rm", "--no-progress", spec)
    try:
        image.cli.run_text("rm", "--no-progress", image.spec)
    except CephMigrateError:
        if image.exists():
            raise
