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
import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

from .copying import remove_when_released
from .errors import RefusedError, VerificationFailed
from .progress import Progress, Report
from .rbd_image import META_COPY_OF, META_PREFIX, META_VERIFIED, RbdImage, facts, outcome, where

SNAP_PREFIX = "ceph_migrate-sync-"
_SNAP = re.compile(r"^ceph_migrate-sync-(\d+)$")
# on the source: the copy it is synced to and the snapshots the pack made on it
META_SYNC = META_PREFIX + "sync"
METHOD = "export_diff"
DIGEST_BLOCK = 64 * 1024
_ZERO = bytes(DIGEST_BLOCK)
_READ = 4 * 1024 * 1024
DIGEST_OF = "sha256 over the non-zero 64 KiB blocks (index, bytes)"


# -- snapshots -------------------------------------------------------------------------------
def sync_snapshots(image: RbdImage) -> List[str]:
    """The pack's sync snapshots on ``image``, oldest first."""
    found = [(int(m.group(1)), s["name"]) for s in image.snapshots()
             if (s.get("namespace") or {}).get("type", "user") == "user"
             for m in [_SNAP.match(str(s.get("name")))] if m]
    return [name for _, name in sorted(found)]


def common_snapshots(source: RbdImage, target: RbdImage) -> List[str]:
    """Sync snapshots present on both sides (import-diff made the target's), oldest first."""
    if target.find() is None:
        return []
    on_target = set(sync_snapshots(target))
    return [s for s in sync_snapshots(source) if s in on_target]


def _number(snapshot: str) -> int:
    match = _SNAP.match(snapshot)
    return int(match.group(1)) if match else 0


def _made_here(source: RbdImage) -> List[str]:
    return list((source.recorded(META_SYNC) or {}).get("snapshots") or [])


def drop_snapshots(image: RbdImage, source: RbdImage, keep: Sequence[str] = ()) -> List[str]:
    """Remove the sync snapshots the pack made (recorded on ``source``) from ``image`` (the
    source or its copy), but ``keep``. Cinder cannot delete a volume whose image has
    snapshots, so the copy loses them before ``cinder manage`` and the source at the cleanup."""
    made = set(_made_here(source)) if source.find() is not None else set()
    removed = [name for name in (sync_snapshots(image) if image.find() is not None else [])
               if name in made and name not in keep]
    # each removal waits about a second on the cluster: side by side, they cost one
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda name: image.cli.run_text(
            "snap", "rm", "--no-progress", "%s@%s" % (image.spec, name)), removed))
    if image.spec == source.spec and image.cli.cluster == source.cli.cluster and made:
        left = [s for s in _made_here(source) if s not in removed]
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
        common = common_snapshots(source, target)
        if common:
            base = common[-1]
        else:      # the pack's copy, but no snapshot left to continue from: start over
            remove_when_released(target, timeout=120)
            started_over = True
    made_snaps = _made_here(source)
    snapshot = SNAP_PREFIX + str(max((_number(s) for s in sync_snapshots(source) + made_snaps),
                                     default=0) + 1)
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
    moved = source.cli.export_into(
        export, target.cli, ["import-diff", "--no-progress", "-", target.spec], timeout=timeout,
        on_bytes=lambda n: progress.update(min(1.0, n / size)))
    seconds = time.monotonic() - started
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
    """Rounds while the source is in use, until one ships at most ``small_bytes`` (the last
    round after I/O stops will ship about as much) or ``max_rounds`` ran."""
    rounds = []
    deadline = time.monotonic() + timeout
    for _ in range(max(1, max_rounds)):
        left = max(1.0, deadline - time.monotonic())
        rounds.append(sync_round(source, target, features, left, report))
        if rounds[-1]["bytes"] <= small_bytes or time.monotonic() >= deadline:
            break
    last = rounds[-1]
    return outcome(True, snapshot=last["snapshot"], target=last["target"],
                   rounds=[{k: r[k] for k in ("snapshot", "base", "started_over", "bytes",
                                              "seconds", "mb_per_second")} for r in rounds],
                   bytes=sum(r["bytes"] for r in rounds),
                   seconds=round(sum(r["seconds"] for r in rounds), 2))


# -- verification ----------------------------------------------------------------------------
class ContentDigest:
    """SHA-256 over the non-zero 64 KiB blocks (index and bytes) of what an export-diff stream
    describes. Holes and zeros hash alike, so two images with the same content have the same
    digest however each allocated it, and only allocated data is ever read."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.index = -1
        self.block: Optional[bytearray] = None
        self.data_bytes = 0

    def write(self, offset: int, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            index, start = divmod(offset + pos, DIGEST_BLOCK)
            n = min(DIGEST_BLOCK - start, len(view) - pos)
            self._at(index)
            if start == 0 and n == DIGEST_BLOCK:
                self._emit(index, view[pos:pos + n])
                self.block = None
            else:
                if self.block is None:
                    self.block = bytearray(DIGEST_BLOCK)
                self.block[start:start + n] = view[pos:pos + n]
            pos += n

    def zero(self, offset: int, length: int) -> None:
        end = offset + length
        while offset < end:
            index, start = divmod(offset, DIGEST_BLOCK)
            n = min(DIGEST_BLOCK - start, end - offset)
            self._at(index)
            if self.block is not None:
                self.block[start:start + n] = _ZERO[:n]
            offset += n

    def hexdigest(self) -> str:
        self._at(self.index + 1)
        return self.sha.hexdigest()

    def _at(self, index: int) -> None:
        if index < self.index:
            raise VerificationFailed("export-diff extents out of order (a striped image?): "
                                     "cannot verify by content blocks")
        if index != self.index:
            if self.block is not None:
                self._emit(self.index, self.block)
            self.index, self.block = index, None

    def _emit(self, index: int, block: Any) -> None:
        if block != _ZERO:
            self.sha.update(index.to_bytes(8, "little"))
            self.sha.update(block)
            self.data_bytes += DIGEST_BLOCK


def digest_stream(stream: IO[bytes], alive: Callable[[int], None]) -> Dict[str, Any]:
    """Parse ``rbd export-diff`` (format 1) from ``stream``: size, snapshots and the content
    digest of the extents it carries."""
    def exact(n: int) -> bytes:
        data = stream.read(n)
        if len(data) != n:
            raise VerificationFailed("export-diff stream ended early")
        return data

    if exact(12) != b"rbd diff v1\n":
        raise VerificationFailed("not an export-diff (format 1) stream")
    digest = ContentDigest()
    found: Dict[str, Any] = {"size": None, "from": None, "to": None}
    read = 0
    while True:
        tag = exact(1)
        if tag in (b"f", b"t"):
            found["from" if tag == b"f" else "to"] = exact(
                int.from_bytes(exact(4), "little")).decode()
        elif tag == b"s":
            found["size"] = int.from_bytes(exact(8), "little")
        elif tag == b"w":
            offset, length = (int.from_bytes(exact(8), "little") for _ in range(2))
            while length:
                chunk = exact(min(length, _READ))
                digest.write(offset, chunk)
                offset, length, read = offset + len(chunk), length - len(chunk), read + len(chunk)
                alive(read)
        elif tag == b"z":
            offset, length = (int.from_bytes(exact(8), "little") for _ in range(2))
            digest.zero(offset, length)
        elif tag == b"e":
            break
        else:
            raise VerificationFailed("export-diff stream has an unknown record %r" % tag)
    return dict(found, sha256=digest.hexdigest(), data_bytes=digest.data_bytes, read=read)


def verify_sync(source: RbdImage, target: RbdImage, timeout: float, full: bool = True,
                report: Optional[Report] = None) -> Dict[str, Any]:
    """Compare source and copy at the newest snapshot both have.

    ``full``: every allocated extent of both. Otherwise (inside the cutover window) only what
    changed since the previous snapshot both have, which must be the last one verified (else
    the check is done in full). A match is recorded on the source, which releasing it
    (``remove_image``) requires; a mismatch raises and stops the migration before the cleanup.
    """
    common = common_snapshots(source, target)
    if not common:
        raise RefusedError("%r and %r have no sync snapshot in common: run sync_image first"
                           % (source, target))
    snapshot = common[-1]
    previous = source.recorded(META_VERIFIED) or {}
    base = None
    if not full and len(common) > 1 and previous.get("snapshot") == common[-2] and \
            previous.get("destination") == where(target):
        base = common[-2]
    if previous.get("snapshot") == snapshot and previous.get("destination") == where(target):
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
                "since": base, "destination": where(target), "method": METHOD,
                "at": datetime.utcnow().replace(microsecond=0).isoformat() + "Z"}
    source.record(META_VERIFIED, verified)
    return outcome(True, verified=True, snapshot=snapshot, since=base, digest=mine["sha256"],
                   digest_of=DIGEST_OF, bytes=mine["size"],
                   hashed_bytes=mine["read"] + theirs["read"], seconds=round(seconds, 2))


def synced_copies(source: RbdImage) -> Tuple[Optional[str], List[str]]:
    """Where the source is being copied to (``cluster:pool/image``) and its snapshots."""
    record = source.recorded(META_SYNC) or {}
    return record.get("target"), list(record.get("snapshots") or [])
