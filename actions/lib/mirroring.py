"""Runbook steps on the source side: features, mirroring, mirror snapshots, failover.

Each step reads the current state first, changes only what is missing and returns
``outcome(changed, ...)``, so a re-run after any failure finishes the job without duplicates.
"""
import re
import time
from typing import Any, Dict, List

from . import names
from .ceph_cli import CephCli
from .copying import recorded_copy, require_verified_copy
from .errors import InvalidName, RbdError, RefusedError
from .rbd_image import (META_ADDED_FEATURES, META_PROMOTED, META_VERIFIED, RbdImage, facts,
                        mirroring, outcome)

JOURNAL_FEATURES = ("exclusive-lock", "journaling")   # in the order they must be enabled
_NOT_PROPAGATED_YET = (16, 30)    # EBUSY, EROFS: what promote says before the demotion arrived


def enable_journal_features(image: RbdImage) -> Dict[str, Any]:
    """Enable exclusive-lock and journaling, remembering (on the image) which ones we added."""
    info = image.info()
    _require_writable_primary(image, info)
    missing = [f for f in JOURNAL_FEATURES if f not in info.get("features", [])]
    if not missing:
        return outcome(False, features=info.get("features", []),
                       added=image.recorded(META_ADDED_FEATURES) or [])
    # record the intent first: a crash between the two leaves a record, never a silent change
    added = sorted(set(image.recorded(META_ADDED_FEATURES) or []) | set(missing),
                   key=JOURNAL_FEATURES.index)
    image.record(META_ADDED_FEATURES, added)
    for feature in missing:
        image.cli.run_text("feature", "enable", image.spec, feature)
    return outcome(True, features=image.info().get("features", []), added=added)


def restore_features(image: RbdImage) -> Dict[str, Any]:
    """Disable exactly the features ``enable_journal_features`` added, once mirroring is off."""
    info = image.info()
    if mirroring(info)["state"] != "disabled":
        raise RefusedError("%r still has mirroring enabled: disable mirroring before removing "
                           "the features it needs" % image)
    added: List[str] = image.recorded(META_ADDED_FEATURES) or []
    present = [f for f in reversed(JOURNAL_FEATURES) if f in added and f in info["features"]]
    for feature in present:
        image.cli.run_text("feature", "disable", image.spec, feature)
    forgot = image.forget(META_ADDED_FEATURES)
    return outcome(bool(present) or forgot, removed=present,
                   features=image.info().get("features", []))


def enable_mirroring(source: RbdImage, replica: RbdImage, mode: str) -> Dict[str, Any]:
    """Enable mirroring of ``source`` towards ``replica``'s cluster: ``rbd mirror image enable``
    in an image-mode pool, journaling in a pool-mode pool (Glance's).

    Refuses, before any change, when the pools are not set up for it, when the image is already
    mirrored in another mode or the other way, when it is a clone of an unmirrored parent, or
    when the destination already holds an unrelated image of that name.
    """
    info = source.info()
    state = mirroring(info)
    if state["state"] == "enabled":
        if not state["primary"]:
            raise RefusedError("%r is a non-primary replica: it is already mirrored the other "
                               "way, from another cluster" % source)
        if state["mode"] != mode:
            raise RefusedError("%r is already mirrored in %s mode, not %s"
                               % (source, state["mode"], mode))
        return outcome(False, mode=mode, global_id=state["global_id"], image=facts(info))
    if state["state"] != "disabled":
        raise RefusedError("mirroring of %r is %s: wait until it settles"
                           % (source, state["state"]))
    pools = check_mirror_pools(source, replica)
    require_mirrorable_parent(source, info)
    existing = replica.find()
    if existing is not None:
        raise RefusedError("the destination already has an image %r that is not a replica of "
                           "this one: rename or remove it first" % replica)
    if pools["source_pool_mode"] == "pool" and mode != "journal":
        raise RefusedError("pool %r mirrors every journaled image (pool mode): only journal mode "
                           "is possible there" % source.pool)
    # rbd enables journaling BEFORE it validates the mode: only call it with a checked mode
    added = enable_journal_features(source)["added"] if mode == "journal" else []
    if pools["source_pool_mode"] == "image":
        source.cli.run_text("mirror", "image", "enable", source.spec, mode)
    info = source.info()
    return outcome(True, mode=mode, global_id=mirroring(info)["global_id"], added_features=added,
                   image=facts(info))


def check_mirror_pools(source: RbdImage, replica: RbdImage) -> Dict[str, Any]:
    """The pool is mirrored on both sides (image or pool mode), with the peers we need."""
    src = source.cli.run("mirror", "pool", "info", source.pool) or {}
    if src.get("mode") not in ("image", "pool"):
        raise RefusedError("pool %r on the %s is not mirrored (mode %r)"
                           % (source.pool, source.cli.cluster.describe(), src.get("mode")))
    if not any(p.get("direction") in ("tx-only", "rx-tx") for p in src.get("peers", [])):
        raise RefusedError("pool %r on the %s has no peer to mirror to"
                           % (source.pool, source.cli.cluster.describe()))
    try:
        dst = replica.cli.run("mirror", "pool", "info", replica.pool) or {}
    except RbdError:
        raise RefusedError("pool %r is missing or unreadable on the %s: rbd-mirror needs the same"
                           " pool name on both clusters"
                           % (replica.pool, replica.cli.cluster.describe())) from None
    if dst.get("mode") not in ("image", "pool") or not any(
            p.get("direction") in ("rx-only", "rx-tx") for p in dst.get("peers", [])):
        raise RefusedError("pool %r on the %s does not receive mirrored images (mode %r, no rx "
                           "peer)" % (replica.pool, replica.cli.cluster.describe(),
                                      dst.get("mode")))
    return {"source_pool_mode": src.get("mode"), "destination_pool_mode": dst.get("mode")}


def disable_mirroring(source: RbdImage, destination: CephCli,
                      discard_replica: bool = False) -> Dict[str, Any]:
    """Disable mirroring on the primary. This purges the replica within a second, so it is
    refused, unless the replica is to be dropped, until ``verify_copy`` recorded a copy on the
    ``destination`` cluster that is still there and is the pack's copy of this replica.
    In a pool-mode pool (Glance's), mirroring is switched off by disabling journaling."""
    info = source.info()
    state = mirroring(info)
    if state["state"] == "disabled":
        return outcome(bool(source.forget(META_PROMOTED)), image=facts(info))
    if not state["primary"]:
        raise RefusedError("%r is not primary: disable mirroring where the image is primary"
                           % source)
    if not discard_replica:
        if not source.recorded(META_VERIFIED):
            raise RefusedError("disabling mirroring of %r would purge the replica, and no "
                               "verified copy of it is recorded: copy and verify first, or pass "
                               "discard_replica" % source)
        require_verified_copy(source, info, recorded_copy(source, destination),
                              "disable mirroring of")
    pool_mode = (source.cli.run("mirror", "pool", "info", source.pool) or {}).get("mode")
    if pool_mode == "pool":
        # a pool-mode pool mirrors every journaled image: journaling off is mirroring off
        source.cli.run_text("feature", "disable", source.spec, "journaling")
    else:
        source.cli.run_text("mirror", "image", "disable", source.spec)
    source.forget(META_PROMOTED)     # a promotion the rollback undid: mirroring is over
    return outcome(True, pool_mode=pool_mode, image=facts(source.info()))


def mirror_snapshot(source: RbdImage) -> Dict[str, Any]:
    """Take a mirror snapshot (snapshot mode): the next sync ships everything written so far.

    Always a change (changed: true); repeating it is harmless, rbd prunes old mirror snapshots.
    """
    state = mirroring(source.info())
    if state["state"] != "enabled" or state["mode"] != "snapshot" or not state["primary"]:
        raise RefusedError("%r is not a primary image in snapshot mirroring mode (mirroring %s,"
                           " mode %s)" % (source, state["state"], state["mode"]))
    out = source.cli.run_text("mirror", "image", "snapshot", source.spec)
    match = re.search(r"Snapshot ID:\s*(\d+)", out)
    return outcome(True, snapshot_id=int(match.group(1)) if match else None)


def demote_image(image: RbdImage, missing_ok: bool = False) -> Dict[str, Any]:
    """Planned failover, step 1: make the primary read-only (I/O must be stopped).
    ``missing_ok``: an image that is gone has nothing to demote (a rollback after the
    destination volume made of a promoted replica was deleted)."""
    info = image.find()
    if info is None and missing_ok:
        return outcome(False, primary=None, missing=True)
    state = mirroring(info if info is not None else image.info())
    if state["state"] != "enabled":
        raise RefusedError("%r is not mirrored: nothing to demote" % image)
    if not state["primary"]:
        return outcome(False, primary=False)
    image.cli.run_text("mirror", "image", "demote", image.spec)
    return outcome(True, primary=False)


def promote_image(image: RbdImage, force: bool = False, timeout: float = 60,
                  poll_interval: float = 1.0) -> Dict[str, Any]:
    """Planned failover, step 2: promote the replica once the demotion has reached it.

    Without ``force`` rbd refuses until the demotion propagated (EBUSY in journal mode; EROFS in
    snapshot mode while the demotion snapshot is still syncing): retried for ``timeout``
    seconds. ``force`` promotes regardless and risks a split brain.
    """
    state = mirroring(image.info())
    if state["state"] != "enabled":
        raise RefusedError("%r is not mirrored: nothing to promote" % image)
    if state["primary"]:
        return outcome(False, primary=True, forced=False)
    argv = ["mirror", "image", "promote", image.spec] + (["--force"] if force else [])
    deadline = time.monotonic() + timeout
    while True:
        try:
            image.cli.run_text(*argv)
            return outcome(True, primary=True, forced=force)
        except RbdError as exc:
            pending = exc.returncode in _NOT_PROPAGATED_YET
            if not pending or time.monotonic() >= deadline:
                if pending:
                    raise RefusedError("%r: the demotion of the primary has not reached this "
                                       "cluster within %ss (is the source demoted and rbd-mirror"
                                       " running?)" % (image, timeout)) from None
                raise
        time.sleep(poll_interval)


def _require_writable_primary(image: RbdImage, info: Dict[str, Any]) -> None:
    state = mirroring(info)
    if state["state"] == "enabled" and not state["primary"]:
        raise RefusedError("%r is a non-primary replica (read-only): it is mirrored from "
                           "another cluster" % image)


def require_mirrorable_parent(image: RbdImage, info: Dict[str, Any]) -> None:
    parent = info.get("parent")
    if not parent:
        return
    try:
        parent_spec = names.image_spec(parent.get("pool"), parent.get("image"))
        parent_info = image.cli.run("info", parent_spec) or {}
    except (InvalidName, RbdError):
        parent_spec, parent_info = "%s/%s" % (parent.get("pool"), parent.get("image")), {}
    if mirroring(parent_info)["state"] != "enabled":
        raise RefusedError("%r is a clone of %s, which is not mirrored: mirror the parent first "
                           "or flatten the image (rbd flatten)" % (image, parent_spec))
