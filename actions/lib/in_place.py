"""Placement promote: the replica becomes the destination volume where it is, no copy at all.

After the final sync the source is demoted (read-only from then on) and the replica promoted;
a snapshot of the promoted replica (``ceph_migrate-verify``) keeps what it held at that moment
while the destination Cinder manages it in place (``cinder manage`` renames it) and the tenant
starts using it. The full check compares the read-only source with that snapshot, then drops
the snapshot: the downtime holds no read of the disk. The release (disable mirroring on both
sides, the source made a plain image again) requires the check's record.

Ownership: the source records which replica it is demoted for before the demotion
(``promoted_to``); the promoted replica records its origin (``copy_of``, kept through Cinder's
rename) and, once checked, its verification (``verified``): the source cannot hold them, it is
read-only.
"""
from typing import Any, Dict, Optional, Tuple

from . import names
from .copying import hash_images
from .errors import RefusedError, VerificationFailed
from .migration import Migration
from .mirroring import demote_image, promote_image
from .progress import Report
from .rbd_image import (META_COPY_OF, META_PROMOTED, META_VERIFIED, RbdImage, mirroring,
                        outcome, where)
from .settings import DESTINATION, SOURCE, Settings

VERIFY_SNAPSHOT = "ceph_migrate-verify"


def pair(settings: Settings, migration: Migration) -> Tuple[RbdImage, RbdImage]:
    """(source, replica) of a data migration placed in place."""
    if migration.procedure != "data" or migration.placement != "promote":
        raise RefusedError("migration of %s is not placed by promotion (placement %s)"
                           % (migration.volume_id, migration.placement))
    name = names.image_name(migration.image)
    return (settings.image(SOURCE, migration.mirrored_pool, name),
            settings.image(DESTINATION, migration.mirrored_pool, name))


def demoted_for(source: RbdImage, replica: RbdImage,
                info: Optional[Dict[str, Any]] = None) -> bool:
    """Whether ``source`` is a demoted image the pack demoted for ``replica``; a demoted
    source without that record is refused (someone else's failover)."""
    state = mirroring(info or source.info())
    if state["state"] != "enabled" or state["primary"] is not False:
        return False
    if (source.recorded(META_PROMOTED) or {}).get("replica") != where(replica):
        raise RefusedError("%r is demoted, but not by ceph_migrate for %r: someone else's "
                           "failover, not touched" % (source, replica))
    return True


def promote_in_place(settings: Settings, migration: Migration,
                     wait_seconds: float = 120) -> Dict[str, Any]:
    """Demote the source, promote the replica, keep a snapshot of it for the check.

    Run after the final sync with the tenant's I/O stopped. Each part is skipped when done, so a
    re-run after a kill finishes the job; the source is demoted only while its replica is
    mirrored from it (same global id) and before that the demotion is recorded on it.
    """
    source, replica = pair(settings, migration)
    info, replica_info = source.info(), replica.find()
    if replica_info is None:
        raise RefusedError("%r has no replica %r to promote: mirror it first" % (source, replica))
    state, replica_state = mirroring(info), mirroring(replica_info)
    if state["state"] != "enabled" or state["global_id"] != replica_state["global_id"]:
        raise RefusedError("%r is not the mirror of %r (mirroring %s, global ids %s and %s)"
                           % (replica, source, state["state"], state["global_id"],
                              replica_state["global_id"]))
    changed = False
    if not demoted_for(source, replica, info):
        source.record(META_PROMOTED, {"replica": where(replica)})
        changed = demote_image(source)["changed"] or changed
    # rbd-mirror takes ~3 s to carry the demotion over: poll it closely, it is downtime
    changed = promote_image(replica, timeout=wait_seconds, poll_interval=0.25)["changed"] \
        or changed
    if (replica.recorded(META_COPY_OF) or {}).get("source") != where(source):
        replica.record(META_COPY_OF, {"source": where(source), "method": "mirror",
                                      "placement": "promote", "made_as": where(replica),
                                      "global_id": state["global_id"]})
        changed = True
    if not any(s["name"] == VERIFY_SNAPSHOT for s in replica.snapshots()):
        replica.cli.run_text("snap", "create",
                             names.image_spec(replica.pool, replica.name, VERIFY_SNAPSHOT))
        changed = True
    return outcome(changed, image=where(replica), snapshot=VERIFY_SNAPSHOT,
                   source=where(source), source_demoted=True)


def promoted_image(settings: Settings, migration: Migration,
                   destination_image: Optional[str] = None) -> RbdImage:
    """The promoted replica under its current name (``cinder manage`` renames it), proven the
    pack's by its ``copy_of``."""
    source, replica = pair(settings, migration)
    image = settings.image(DESTINATION, replica.pool, destination_image or replica.name)
    if image.find() is None:
        raise RefusedError("%r does not exist: nothing placed in place to check" % image)
    if (image.recorded(META_COPY_OF) or {}).get("source") != where(source):
        raise RefusedError("%r is not the replica ceph_migrate promoted for %r" % (image, source))
    return image


def verify_in_place(settings: Settings, migration: Migration,
                    destination_image: Optional[str] = None,
                    report: Optional[Report] = None) -> Dict[str, Any]:
    """Compare the read-only source with the snapshot taken at the promotion (sha256 of both,
    in parallel); on a match record it on the promoted image and drop the snapshot.

    A re-run after the record is written changes nothing; with neither the record nor the
    snapshot left nothing proves the content, and the step fails (the source stays demoted).
    """
    source, replica = pair(settings, migration)
    image = promoted_image(settings, migration, destination_image)
    recorded = image.recorded(META_VERIFIED) or {}
    has_snapshot = any(s["name"] == VERIFY_SNAPSHOT for s in image.snapshots())
    if recorded.get("source") == where(source) and not has_snapshot:
        return outcome(False, verified=True, sha256=recorded.get("sha256"),
                       bytes=recorded.get("bytes"), image=where(image))
    if not has_snapshot:
        raise RefusedError("%r has no snapshot %s and no verification record: its content at "
                           "the promotion cannot be checked any more; the source %r stays "
                           "demoted" % (image, VERIFY_SNAPSHOT, source))
    info = source.info()        # read once: the demotion check and the size
    if not demoted_for(source, replica, info):
        raise RefusedError("%r is not demoted: the check compares a read-only source" % source)
    size = int(info["size"])
    result = hash_images([(source.cli, source.spec),
                          (image.cli, names.image_spec(image.pool, image.name, VERIFY_SNAPSHOT))],
                         size, settings.copy_timeout, "verify %s" % source.spec, report)
    (source_sum, source_len), (copy_sum, copy_len) = result["sums"]
    if (source_sum, source_len) != (copy_sum, copy_len):
        raise VerificationFailed(
            "content differs: %r sha256 %s (%d bytes), %r at %s sha256 %s (%d bytes); the "
            "source stays demoted and read-only, nothing is released (the snapshot is kept; "
            "the rollback removes it)" % (source, source_sum, source_len, image,
                                          VERIFY_SNAPSHOT, copy_sum, copy_len))
    image.record(META_VERIFIED, {"source": where(source), "sha256": source_sum,
                                 "bytes": source_len, "placement": "promote"})
    drop_verify_snapshot(image)      # Cinder cannot delete a volume whose image has snapshots
    return outcome(True, verified=True, sha256=source_sum, bytes=source_len,
                   image=where(image), seconds=result["seconds"],
                   mb_per_second=result["mb_per_second"])


def drop_verify_snapshot(image: RbdImage) -> bool:
    """Remove the check's snapshot from a promoted image the pack placed (Cinder refuses to
    delete a volume whose image has snapshots); False when there is none."""
    if image.find() is None or (image.recorded(META_COPY_OF) or {}).get("placement") != "promote" \
            or not any(s["name"] == VERIFY_SNAPSHOT for s in image.snapshots()):
        return False
    image.cli.run_text("snap", "rm", "--no-progress",
                       names.image_spec(image.pool, image.name, VERIFY_SNAPSHOT))
    return True


def release_in_place(settings: Settings, migration: Migration,
                     destination_image: Optional[str] = None) -> Dict[str, Any]:
    """The cleanup: mirroring off at the destination (the volume is a plain image there) and,
    forced, at the demoted source, which becomes a plain writable image again and is kept.
    Refused until ``verify_in_place`` recorded the check."""
    source, replica = pair(settings, migration)
    image = promoted_image(settings, migration, destination_image)
    if (image.recorded(META_VERIFIED) or {}).get("source") != where(source):
        raise RefusedError("refusing to release %r: %r holds no verification of it (run "
                           "verify_in_place first)" % (source, image))
    changed = False
    if mirroring(image.info())["state"] != "disabled":
        image.cli.run_text("mirror", "image", "disable", image.spec)
        changed = True
    info = source.info()
    if mirroring(info)["state"] != "disabled":
        demoted_for(source, replica, info)          # refuses someone else's demoted image
        source.cli.run_text("mirror", "image", "disable", "--force", source.spec)
        changed = True
    changed = source.forget(META_PROMOTED) or changed
    return outcome(changed, released=where(source), image=where(image))
