"""Copy an image across clusters in rounds of ``rbd export-diff | rbd import-diff``, and verify
the copy by content proportional to the data, not the provisioned size.

Why: the runbook copies the whole replica and hashes the whole image after the tenant stopped
I/O, so the downtime grows with the disk. Here rounds run while the tenant still writes; each
round snapshots the source (``ceph_migrate-sync-<n>``) and ships only what changed since the
previous round's snapshot, which import-diff recreates on the copy. After I/O stops, one more
round ships the last delta, and only that delta is hashed inside the window; the full check ran
on the previous snapshot before it. export-diff reads a clone's parent through, so a volume
cloned from an image arrives flat, with the source untouched, and no rbd-mirror is needed.

Every snapshot and copy is provably the pack's: the source records the copy and the snapshots
it made (``ceph_migrate.sync``) before it makes them, the copy records its origin
(``ceph_migrate.copy_of``); nothing else is ever removed.
"""
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .copying import remove_when_released
from .diff_digest import DIGEST_OF, DiffDigest, digest_stream
from .errors import RefusedError, VerificationFailed
from .migration import carried
from .progress import Progress, Report
from .rbd_image import (META_COPY_OF, META_PREFIX, META_VERIFIED, RbdImage, facts, mirroring,
                        outcome, where)
from .settings import DESTINATION, SOURCE, Settings

SNAP_PREFIX = "ceph_migrate-sync-"
_SNAP = re.compile(r"^ceph_migrate-sync-(\d+)$")
# on the source: the copy it is synced to and the snapshots the pack made on it
META_SYNC = META_PREFIX + "sync"
METHOD = "export_diff"


def synced_pair(settings: Settings, image: Optional[str] = None, pool: Optional[str] = None,
                destination_pool: Optional[str] = None, destination_image: Optional[str] = None,
                migration: Optional[Mapping[str, Any]] = None) -> Tuple[RbdImage, RbdImage]:
    """The source image and its copy, named by the plan's ``migration`` value (what a workflow
    carries) or by hand; names given by hand win. Defaults: the Cinder pools, the same name."""
    plan = carried(migration, None)
    if plan is not None:
        if plan.procedure != "data" or plan.method != METHOD:
            raise RefusedError("the migration value is a %s migration by %s, not a data volume "
                               "copied by %s" % (plan.procedure, plan.method, METHOD))
        image, pool = image or plan.image, pool or plan.mirrored_pool
        destination_pool = destination_pool or plan.destination_pool
        destination_image = destination_image or plan.destination_image
    if not image:
        raise RefusedError("name the source image (image) or pass the plan's migration value")
    pools = settings.pools
    return (settings.image(SOURCE, pool or pools.mirrored_cinder, image),
            settings.image(DESTINATION, destination_pool or pools.destination_cinder,
                           destination_image or image))


# -- snapshots -------------------------------------------------------------------------------
def sync_snapshots(image: RbdImage) -> Dict[str, int]:
    """The pack's sync snapshots on ``image``, oldest first, with their snapshot ids."""
    found = [(int(m.group(1)), s["name"], s["id"]) for s in image.snapshots()
             if (s.get("namespace") or {}).get("type", "user") == "user"
             for m in [_SNAP.match(str(s.get("name")))] if m]
    return {name: snap_id for _, name, snap_id in sorted(found)}


def common_snapshots(source: RbdImage, target: RbdImage) -> Dict[str, int]:
    """Sync snapshots present on both sides (import-diff made the target's), oldest first,
    with their ids on the source."""
    if target.find() is None:
        return {}
    on_target = sync_snapshots(target)
    return {s: i for s, i in sync_snapshots(source).items() if s in on_target}


def _number(snapshot: str) -> int:
    match = _SNAP.match(snapshot)
    return int(match.group(1)) if match else 0


def recorded_snapshots(source: RbdImage) -> List[str]:
    """The sync snapshots the pack recorded on ``source`` before it took them."""
    return list((source.recorded(META_SYNC) or {}).get("snapshots") or [])


def drop_snapshots(image: RbdImage, source: RbdImage, keep: Sequence[str] = ()) -> List[str]:
    """Remove the sync snapshots the pack made (recorded on ``source``) from ``image`` (the
    source or its copy), but ``keep``. Cinder cannot delete a volume whose image has
    snapshots, so the copy loses them before ``cinder manage`` and the source at the cleanup."""
    made = set(recorded_snapshots(source)) if source.find() is not None else set()
    removed = [name for name in (sync_snapshots(image) if image.find() is not None else [])
               if name in made and name not in keep]
    # each removal waits about a second on the cluster: side by side, they cost one
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda name: image.cli.run_text(
            "snap", "rm", "--no-progress", "%s@%s" % (image.spec, name)), removed))
    if image.spec == source.spec and image.cli.cluster == source.cli.cluster and made:
        left = [s for s in recorded_snapshots(source) if s not in removed]
        if not left:       # no snapshot of the pack's left: no trace of the sync either
            source.forget(META_SYNC)
        elif removed:
            source.record(META_SYNC, dict(source.recorded(META_SYNC) or {}, snapshots=left))
    return removed


# -- one round -------------------------------------------------------------------------------
def sync_round(source: RbdImage, target: RbdImage, features: Sequence[str], timeout: float,
               report: Optional[Report] = None, prune: bool = True) -> Dict[str, Any]:
    """Snapshot the source and bring ``target`` (another cluster) to that snapshot, shipping
    only what changed since the newest snapshot both sides have (everything allocated, the
    parent's data included, on the first round). A round killed half-way is repaired by the
    next: the target keeps its previous snapshot, and the next diff from it covers whatever
    the killed one wrote. ``prune`` removes the snapshots older than the round's base (not
    inside the cutover window: each removal costs about a second)."""
    info = source.info()
    if mirroring(info)["primary"] is False:
        raise RefusedError("%r is a non-primary replica (read-only): no snapshot can be taken "
                           "of it" % source)
    origin = {"source": where(source), "image_id": info.get("id"), "method": METHOD}
    record = source.recorded(META_SYNC) or {}
    if record.get("target") not in (None, where(target)):
        raise RefusedError("%r is already being copied to %s, not %s" % (
            source, record["target"], where(target)))
    base = None
    started_over = False
    if target.find() is not None:
        made = target.recorded(META_COPY_OF) or {}
        if {k: made.get(k) for k in origin} != origin:
            raise RefusedError("%r already exists and is not the pack's copy of %r: choose "
                               "another destination name" % (target, source))
        common = list(common_snapshots(source, target))
        if common:
            base = common[-1]
        else:      # the pack's copy, but no snapshot left to continue from: start over
            remove_when_released(target, timeout=120)
            started_over = True
    made_snaps = recorded_snapshots(source)
    snapshot = SNAP_PREFIX + str(max((_number(s) for s in list(sync_snapshots(source)) +
                                      made_snaps), default=0) + 1)
    # the intent first: a run killed between the two leaves a record, never an unowned change
    source.record(META_SYNC, {"target": where(target), "snapshots": made_snaps + [snapshot]})
    if target.find() is None:
        args = ["create", "--size", "%dB" % int(info["size"]), "--object-size",
                "%dB" % int(info.get("object_size") or 4194304)]
        for feature in features:
            args += ["--image-feature", feature]
        target.cli.run_text(*(args + [target.spec]))
        target.record(META_COPY_OF, dict(origin, made_as=where(target)))
    source.cli.run_text("snap", "create", "%s@%s" % (source.spec, snapshot))
    export = ["export-diff", "--no-progress"] + (["--from-snap", base] if base else []) + [
        "%s@%s" % (source.spec, snapshot), "-"]
    progress = Progress("sync %s" % target.spec, int(info.get("size") or 0), report)
    started = time.monotonic()
    size = max(1, int(info.get("size") or 1))
    shipped = DiffDigest()              # the source's side of the check, read as it crosses
    moved = source.cli.export_into(
        export, target.cli, ["import-diff", "--no-progress", "-", target.spec], timeout=timeout,
        on_bytes=lambda n: progress.update(min(1.0, n / size)), tap=shipped.feed)
    seconds = time.monotonic() - started
    record = source.recorded(META_SYNC) or {}
    digests = {k: v for k, v in (record.get("digests") or {}).items() if k == base}
    digests[snapshot] = {k: shipped.result()[k] for k in ("sha256", "size", "read")}
    digests[snapshot]["since"] = base
    source.record(META_SYNC, dict(record, digests=digests))
    # only the newest two are needed: the round's base (verified) and the new one
    if prune:
        keep = [s for s in (base, snapshot) if s]
        drop_snapshots(target, source, keep)
        drop_snapshots(source, source, keep)
    return outcome(True, snapshot=snapshot, base=base, started_over=started_over,
                   bytes=moved, seconds=round(seconds, 2),
                   mb_per_second=round(moved / 1e6 / seconds, 1) if seconds > 0 else None,
                   target=facts(target.info()))


def presync(source: RbdImage, target: RbdImage, features: Sequence[str], timeout: float,
            max_rounds: int = 3, small_bytes: int = 64 * 1024 * 1024,
            report: Optional[Report] = None) -> Dict[str, Any]:
    """Rounds while the source is in use, until what the tenant wrote since the last one is at
    most ``small_bytes`` (the final round after I/O stops ships about that much), or
    ``max_rounds`` ran. An idle volume takes one round."""
    rounds = []
    deadline = time.monotonic() + timeout
    for _ in range(max(1, max_rounds)):
        left = max(1.0, deadline - time.monotonic())
        rounds.append(sync_round(source, target, features, left, report))
        if time.monotonic() >= deadline or \
                changed_since(source, rounds[-1]["snapshot"]) <= small_bytes:
            break
    last = rounds[-1]
    # only the newest is needed from here on (the full check's, the final round's base): the
    # copy loses its snapshots inside the cutover window, each removal costs about a second
    drop_snapshots(target, source, [last["snapshot"]])
    drop_snapshots(source, source, [last["snapshot"]])
    return outcome(True, snapshot=last["snapshot"], target=last["target"],
                   rounds=[{k: r[k] for k in ("snapshot", "base", "started_over", "bytes",
                                              "seconds", "mb_per_second")} for r in rounds],
                   bytes=sum(r["bytes"] for r in rounds),
                   seconds=round(sum(r["seconds"] for r in rounds), 2))


def changed_since(source: RbdImage, snapshot: str) -> int:
    """Bytes of the objects written since ``snapshot`` (``rbd diff --whole-object``: object
    map and fast-diff answer it from metadata, without reading data)."""
    extents = source.cli.run("diff", "--whole-object", "--from-snap", snapshot,
                             source.spec) or []
    return sum(int(e.get("length") or 0) for e in extents)


# -- verification ----------------------------------------------------------------------------
def verify_sync(source: RbdImage, target: RbdImage, timeout: float, full: bool = True,
                report: Optional[Report] = None) -> Dict[str, Any]:
    """Compare source and copy at the newest snapshot both have.

    ``full``: every allocated extent of both. Otherwise (inside the cutover window) only what
    changed since the previous snapshot both have, which must be the last one verified (else
    the check is done in full). A match is recorded on the source, which releasing it
    (``remove_image``) requires; a mismatch raises and stops the migration before the cleanup.
    """
    # names come back after a cleanup; snapshot ids and image ids are never reused
    ids = common_snapshots(source, target)
    common = list(ids)
    if not common:
        raise RefusedError("%r and %r have no sync snapshot in common: run sync_image first"
                           % (source, target))
    snapshot = common[-1]
    copy_id = target.info().get("id")
    previous = source.recorded(META_VERIFIED) or {}

    def verified_at(name: str) -> bool:
        return (previous.get("snapshot"), previous.get("snapshot_id"),
                previous.get("destination"), previous.get("copy_id")) == (
                    name, ids.get(name), where(target), copy_id)

    base = common[-2] if not full and len(common) > 1 and verified_at(common[-2]) else None
    if verified_at(snapshot):
        return outcome(False, verified=True, **{k: previous.get(k) for k in (
            "snapshot", "since", "digest", "bytes")}, seconds=0.0)
    size = int(source.info().get("size") or 0)
    progress = Progress("verify %s@%s" % (source.spec, snapshot), size, report)
    done = [0, 0]

    def digest(side: int, image: RbdImage) -> Dict[str, Any]:
        def alive(read: int) -> None:
            done[side] = read
            progress.update(min(1.0, min(done) / max(1, size)))
        args = ["export-diff", "--no-progress"] + (["--from-snap", base] if base else []) + [
            "%s@%s" % (image.spec, snapshot), "-"]

        def read(out: IO[bytes], tick: Callable[[], None]) -> Dict[str, Any]:
            def seen(n: int) -> None:
                tick()
                alive(n)
            return digest_stream(out, seen)
        return image.cli.stream_stdout(args, timeout, read)

    started = time.monotonic()
    # the source's side as the round that made this snapshot shipped it, when it shipped
    # exactly what is compared (from the same base); else the source is read again
    shipped = ((source.recorded(META_SYNC) or {}).get("digests") or {}).get(snapshot)
    reused = bool(shipped and shipped.get("since") == base)
    if shipped and reused:
        done[0] = size
        mine, theirs = dict(shipped, read=0), digest(1, target)
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            mine, theirs = [f.result() for f in [pool.submit(digest, side, image) for side, image
                                                 in enumerate((source, target))]]
    seconds = time.monotonic() - started
    what = "the changes since %s" % base if base else "the content"
    if (mine["size"], mine["sha256"]) != (theirs["size"], theirs["sha256"]):
        raise VerificationFailed(
            "%s of %r@%s and %r@%s differ (%s bytes digest %s, %s bytes digest %s): the "
            "migration stops here, nothing is cleaned up" % (
                what, source, snapshot, target, snapshot, mine["size"], mine["sha256"],
                theirs["size"], theirs["sha256"]))
    verified = {"digest": mine["sha256"], "bytes": mine["size"], "snapshot": snapshot,
                "snapshot_id": ids.get(snapshot), "copy_id": copy_id, "since": base,
                "destination": where(target), "method": METHOD,
                "at": datetime.utcnow().replace(microsecond=0).isoformat() + "Z"}
    source.record(META_VERIFIED, verified)
    return outcome(True, verified=True, snapshot=snapshot, since=base, digest=mine["sha256"],
                   digest_of=DIGEST_OF, bytes=mine["size"],
                   hashed_bytes=mine["read"] + theirs["read"],
                   source_read_again=not reused,
                   seconds=round(seconds, 2))
