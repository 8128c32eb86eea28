"""A Glance image's data from the source cluster into the destination Glance pool, the Ceph way:
rbd-mirror carries it (the Glance pools mirror by journal, as the boot procedure's upload), the
replica is copied into the destination Glance pool, snapshotted as Glance serves images
(``snap``, protected) and verified by content; then mirroring is switched off and the features
it needed removed. No byte goes through Glance's API. Each step finds its own earlier work, so a
re-run after a failure goes on where it stopped."""
from typing import Any, Dict, List, Mapping, Optional

from . import names
from .copying import copy_replica, create_snapshot, verify_copy
from .errors import CephMigrateError, RbdError, RefusedError
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
    left: List[str] = []
    try:
        enable_mirroring(source, replica, BOOT_MIRROR_MODE)
        left.append("mirroring of %s is on (journaling added)" % source.spec)
        synced = wait_for_sync(BOOT_MIRROR_MODE, source, replica, settings.wait_timeout,
                               settings.poll_interval)
        if synced["timed_out"]:
            raise CephMigrateError("the replica of %s is not in sync after %ss"
                                   % (source.spec, synced["waited_seconds"]))
        copy_replica(replica, target, settings.copy_features, settings.copy_timeout,
                     primary=source, report=report)
        left.append("its copy %s is in the destination Glance pool, not registered"
                    % target.spec)
        create_snapshot(target, GLANCE_SNAPSHOT, protect=True)
        verify_copy(source, target, settings.copy_timeout, report=report)
        disable_mirroring(source, settings.rbd(DESTINATION))
        left[0] = "journaling is still on at %s" % source.spec
        restore_features(source)
        left.pop(0)
    except CephMigrateError as exc:
        # said, for the operator: re-running the import goes on from here
        kind = CephMigrateError if isinstance(exc, RbdError) else type(exc)
        raise kind("%s. Left: %s; re-run the import to finish" % (
            str(exc).rstrip("."), "; ".join(left) or "nothing")) from None
    return target


def _carried(source: RbdImage, target: RbdImage) -> bool:
    """Done before: the copy verified, snapshotted, and mirroring off again."""
    verified: Dict[str, Any] = source.recorded(META_VERIFIED) or {}
    if verified.get("destination") != where(target) or not target.exists():
        return False
    if mirroring(source.info())["state"] != "disabled":
        return False
    return GLANCE_SNAPSHOT in [s["name"] for s in target.snapshots()]
