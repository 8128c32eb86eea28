"""A Glance image's data from the source cluster into the destination Glance pool, the Ceph way:
rbd-mirror carries it (the Glance pools mirror by journal, as the boot procedure's upload), the
replica is copied into the destination Glance pool, snapshotted as Glance serves images
(``snap``, protected) and verified by content; then mirroring is switched off and the features
it needed removed. No byte goes through Glance's API. Each step finds its own earlier work, so a
re-run after a failure goes on where it stopped."""
from typing import Any, Dict, Mapping, Optional

from . import names
from .copying import copy_replica, create_snapshot, verify_copy
from .errors import CephMigrateError, RefusedError
from .mirroring import disable_mirroring, enable_mirroring, restore_features
from .planning import BOOT_MIRROR_MODE
from .progress import Report
from .rbd_image import META_VERIFIED, RbdImage, mirroring, where
from .settings import DESTINATION, SOURCE, Settings
from .sync_check import wait_for_sync

GLANCE_SNAPSHOT = "snap"


def carry_image(settings: Settings, location: Mapping[str, str],
                report: Optional[Report] = None) -> RbdImage:
    """The copy (with its protected snapshot) of the source image at LOCATION (an rbd://
    location's parts) in the destination Glance pool, verified equal to the source."""
    pool = location["pool"]
    if pool != settings.pools.mirrored_glance:
        raise RefusedError("the image's data is in pool %s, not in the mirrored Glance pool %s: "
                           "the pack cannot carry it" % (pool, settings.pools.mirrored_glance))
    name = names.image_name(location["image"])
    source = settings.image(SOURCE, pool, name)
    replica = settings.image(DESTINATION, pool, name)
    target = settings.image(DESTINATION, settings.pools.destination_glance, name)
    if _carried(source, target):
        return target
    enable_mirroring(source, replica, BOOT_MIRROR_MODE)
    synced = wait_for_sync(BOOT_MIRROR_MODE, source, replica, settings.wait_timeout,
                           settings.poll_interval)
    if synced["timed_out"]:
        raise CephMigrateError("the replica of %s is not in sync after %ss: re-run to go on"
                               % (source.spec, synced["waited_seconds"]))
    copy_replica(replica, target, settings.copy_features, settings.copy_timeout,
                 primary=source, report=report)
    create_snapshot(target, GLANCE_SNAPSHOT, protect=True)
    verify_copy(source, target, settings.copy_timeout, report=report)
    disable_mirroring(source, settings.rbd(DESTINATION))
    restore_features(source)
    return target


def _carried(source: RbdImage, target: RbdImage) -> bool:
    """Done before: the copy verified, snapshotted, and mirroring off again."""
    verified: Dict[str, Any] = source.recorded(META_VERIFIED) or {}
    if verified.get("destination") != where(target) or not target.exists():
        return False
    if mirroring(source.info())["state"] != "disabled":
        return False
    return GLANCE_SNAPSHOT in [s["name"] for s in target.snapshots()]
