"""Runbook steps inside and across clusters: copy the replica, snapshot, verify, remove."""
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from . import names
from .ceph_cli import CephCli
from .errors import RbdError, RefusedError, VerificationFailed
from .progress import Progress, Report
from .rbd_image import (META_COPY_OF, META_COPYING, META_PREFIX, META_VERIFIED, RbdImage, facts,
                        mirroring, outcome, where)

TMP_SUFFIX = ".ceph_migrate-partial"
EBUSY = 16


def copy_replica(replica: RbdImage, target: RbdImage, features: Sequence[str],
                 timeout: float, primary: RbdImage,
                 report: Optional[Report] = None) -> Dict[str, Any]:
    """Copy ``replica`` into ``target`` (same cluster) with explicit features.

    ``--image-feature`` keeps the copy free of journaling (a copy that inherits it ran 6x
    slower). The copy goes to a temporary name and is renamed when complete, so a killed run
    leaves no half image under the final name. Before ``rbd cp`` starts, the half-written
    name is recorded on ``primary`` (the image the replica mirrors; the replica itself once
    promoted): a re-run removes a partial image only when that record names it. The copy is
    tagged with its origin and the name it was made under: an existing target with the same
    origin is this copy (nothing to do), any other existing target is a name collision.
    """
    if replica.cli.cluster != target.cli.cluster:
        raise RefusedError("copy_replica copies inside one cluster: %r and %r differ"
                           % (replica, target))
    source_info = replica.info()
    origin = {"global_id": mirroring(source_info)["global_id"], "source": where(replica)}
    existing = target.find()
    if existing is not None:
        recorded = target.recorded(META_COPY_OF) or {}
        if {k: recorded.get(k) for k in origin} != origin:
            raise RefusedError("%r already exists and is not a copy of %r: choose another "
                               "destination name" % (target, replica))
        return outcome(False, target=facts(existing), seconds=0.0)
    holder = replica if mirroring(source_info)["primary"] else primary
    partial = RbdImage(target.cli, target.pool, target.name + TMP_SUFFIX)
    removed_partial = partial.exists()
    if removed_partial:
        if holder.recorded(META_COPYING) != where(partial):
            raise RefusedError("%r exists and no record of ceph_migrate says its copy left it "
                               "there: not removed; remove it yourself if nobody needs it"
                               % partial)
        remove_when_released(partial)
    holder.record(META_COPYING, where(partial))
    args = ["cp"]
    for feature in features:
        args += ["--image-feature", feature]
    progress = Progress("copy %s" % target.spec, int(source_info.get("size") or 0), report)
    started = time.monotonic()
    target.cli.run_with_progress(*(args + [replica.spec, partial.spec]), timeout=timeout,
                                 on_progress=progress.update)
    seconds = time.monotonic() - started
    for key in partial.metadata():          # the source's bookkeeping stays with the source
        if key.startswith(META_PREFIX):
            partial.forget(key)
    partial.record(META_COPY_OF, dict(origin, made_as=where(target)))
    target.cli.run_text("rename", partial.spec, target.spec)
    holder.forget(META_COPYING)
    size = int(source_info.get("size") or 0)
    return outcome(True, target=facts(target.info()), seconds=round(seconds, 2),
                   mb_per_second=round(size / 1e6 / seconds, 1) if seconds > 0 else None,
                   removed_partial=removed_partial)


def remove_when_released(partial: RbdImage, timeout: float = 120, poll: float = 2) -> None:
    """A killed run's ``rbd cp`` leaves its watch on the partial image until the OSDs time the
    dead client out (~30 s): rbd refuses the removal with EBUSY meanwhile, so wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            partial.cli.run_text("rm", "--no-progress", partial.spec)
            return
        except RbdError as exc:
            if exc.returncode != EBUSY or time.monotonic() >= deadline:
                raise
        time.sleep(poll)


def create_snapshot(image: RbdImage, snapshot: str, protect: bool = True) -> Dict[str, Any]:
    """Create ``image@snapshot`` and protect it (what Glance and clones need)."""
    names.snapshot_name(snapshot)
    existing = {s["name"]: s for s in image.snapshots()
                if (s.get("namespace") or {}).get("type", "user") == "user"}
    changed = False
    if snapshot not in existing:
        image.cli.run_text("snap", "create", "%s@%s" % (image.spec, snapshot))
        changed = True
        protected = False
    else:
        protected = str(existing[snapshot].get("protected")).lower() == "true"
    if protect and not protected:
        image.cli.run_text("snap", "protect", "%s@%s" % (image.spec, snapshot))
        changed = True
    return outcome(changed, snapshot="%s@%s" % (image.spec, snapshot), protected=protect or
                   protected)


def verify_copy(source: RbdImage, target: RbdImage, timeout: float,
                record: bool = True, report: Optional[Report] = None) -> Dict[str, Any]:
    """Hash ``rbd export`` of both images in parallel and compare.

    On a match the result is recorded in the source image's metadata; ``disable_mirroring``
    and ``remove_image`` of the source require that record.
    """
    source_info, target_info = source.info(), target.info()
    if source_info["size"] != target_info["size"]:
        raise VerificationFailed("%r is %d bytes but %r is %d bytes" % (
            source, source_info["size"], target, target_info["size"]))
    hashed = hash_images([(source.cli, source.spec), (target.cli, target.spec)],
                         int(source_info["size"]), timeout, "verify %s" % source.spec, report)
    (source_sum, source_len), (target_sum, target_len) = hashed["sums"]
    seconds = hashed["seconds"]
    if (source_sum, source_len) != (target_sum, target_len):
        raise VerificationFailed("content differs: %r sha256 %s (%d bytes), %r sha256 %s (%d "
                                 "bytes)" % (source, source_sum, source_len, target,
                                             target_sum, target_len))
    verified = {"sha256": source_sum, "bytes": source_len, "destination": where(target),
                "global_id": mirroring(source_info)["global_id"],
                "at": datetime.utcnow().replace(microsecond=0).isoformat() + "Z"}
    changed = False
    if record and mirroring(source_info)["primary"] is not False:
        # the mirror image's global id too: the same data mirrored again (after a rollback)
        # is another replica, and disable_mirroring checks the copy against this record
        previous = source.recorded(META_VERIFIED) or {}
        keys = ("sha256", "bytes", "destination", "global_id")
        if {k: previous.get(k) for k in keys} != {k: verified[k] for k in keys}:
            source.record(META_VERIFIED, verified)
            changed = True
    return outcome(changed, verified=True, sha256=source_sum, bytes=source_len,
                   seconds=round(seconds, 2),
                   mb_per_second=round(source_len / 1e6 / seconds, 1) if seconds > 0 else None)


def hash_images(specs: Sequence[Tuple[CephCli, str]], size: int, timeout: float, label: str,
                report: Optional[Report] = None) -> Dict[str, Any]:
    """sha256 and length of ``rbd export`` of each (cli, spec), all at once; progress is the
    slowest one's."""
    progress = Progress(label, size, report)
    done = [0.0] * len(specs)

    def track(side: int) -> Callable[[float], None]:
        def update(fraction: float) -> None:
            done[side] = fraction
            progress.update(min(done))
        return update

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        futures = [pool.submit(cli.export_sha256, spec, timeout, size, track(side))
                   for side, (cli, spec) in enumerate(specs)]
        sums = [f.result() for f in futures]
    seconds = time.monotonic() - started
    return {"sums": sums, "seconds": round(seconds, 2),
            "mb_per_second": round(sums[0][1] / 1e6 / seconds, 1) if seconds > 0 else None}


def remove_image(image: RbdImage, verified_copy: Optional[RbdImage] = None) -> Dict[str, Any]:
    """Remove an image that is no longer needed, refusing anything that could lose data.

    A source image (pass ``verified_copy``, where its verified copy lives) is removed only when
    ``verify_copy`` recorded that very copy and it still exists with the same size. Replicas
    (non-primary) are never removed here: disabling mirroring on the primary removes them.
    """
    info = image.find()
    if info is None:
        return outcome(False, removed=False)
    state = mirroring(info)
    if state["state"] == "enabled" and not state["primary"]:
        raise RefusedError("%r is a non-primary replica: disable mirroring of its primary "
                           "instead" % image)
    if state["state"] != "disabled":
        raise RefusedError("%r is still mirrored: disable mirroring first" % image)
    if image.watchers():
        raise RefusedError("%r is in use (it has watchers): detach it first" % image)
    if verified_copy is not None:
        require_verified_copy(image, info, verified_copy, "remove")
    user_snaps = [s for s in image.snapshots()
                  if (s.get("namespace") or {}).get("type", "user") == "user"]
    if user_snaps:
        raise RefusedError("%r has snapshots (%s): remove them first"
                           % (image, ", ".join(s["name"] for s in user_snaps)))
    image.cli.run_text("rm", "--no-progress", image.spec)
    return outcome(True, removed=True, image=facts(info))


def recorded_copy(image: RbdImage, destination: CephCli) -> Optional[RbdImage]:
    """The verified copy ``verify_copy`` recorded on ``image``, on the ``destination`` cluster;
    None when no record names a copy there."""
    record = image.recorded(META_VERIFIED) or {}
    cluster, _, spec = str(record.get("destination") or "").partition(":")
    pool, _, name = spec.partition("/")
    if cluster != destination.cluster.name or not pool or not name:
        return None
    return RbdImage(destination, pool, name)


def require_verified_copy(image: RbdImage, info: Dict[str, Any], copy: Optional[RbdImage],
                          doing: str) -> None:
    """Refuse ``doing`` (something that releases ``image``) unless ``verify_copy`` recorded
    ``copy`` and it is still there: the same size, and made by the pack from this image's
    replica (its ``copy_of`` names the mirror global id the verification saw)."""
    record = image.recorded(META_VERIFIED) or {}
    if copy is None or record.get("destination") != where(copy):
        raise RefusedError("refusing to %s %r: no verified copy%s is recorded (run verify_copy "
                           "first)" % (doing, image, " at " + where(copy) if copy else ""))
    copy_info = copy.find()
    if copy_info is None or copy_info.get("size") != info.get("size"):
        raise RefusedError("refusing to %s %r: its verified copy %r is gone or changed size"
                           % (doing, image, copy))
    made = copy.recorded(META_COPY_OF) or {}
    if record.get("method") == "export_diff" and (
            made.get("source"), made.get("image_id")) != (where(image), info.get("id")):
        raise RefusedError("refusing to %s %r: %r is not the copy export_diff made of it"
                           % (doing, image, copy))
    if record.get("global_id") and made.get("global_id") != record["global_id"]:
        raise RefusedError("refusing to %s %r: %r is not the copy that was verified (it was "
                           "made from mirror image %s, the verification saw %s)"
                           % (doing, image, copy, made.get("global_id"), record["global_id"]))
