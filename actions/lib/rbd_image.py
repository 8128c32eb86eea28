"""One RBD image on one cluster, as the steps see it: facts first, then changes."""
import json
from typing import Any, Dict, List, Optional

from . import names
from .ceph_cli import CephCli
from .errors import NotFound, PoolNotFound, RbdNotFound

META_PREFIX = "ceph_migrate."
META_ADDED_FEATURES = META_PREFIX + "added_features"
META_VERIFIED = META_PREFIX + "verified"
META_COPY_OF = META_PREFIX + "copy_of"
# on the image being mirrored (the primary): the half-written copy ``rbd cp`` is writing now,
# so that only a partial image this record names is ever removed as the pack's leftover
META_COPYING = META_PREFIX + "copying"
# on a copy registered in Glance by its location: the Glance image that now owns it
META_REGISTERED = META_PREFIX + "registered_as"
# on a source demoted for placement promote: the replica it was demoted for (written first)
META_PROMOTED = META_PREFIX + "promoted_to"


def where(image: "RbdImage") -> str:
    """``cluster:pool/image``: how records name an image, unambiguous across both clusters."""
    return "%s:%s" % (image.cli.cluster.name, image.spec)


def outcome(changed: bool, **facts: Any) -> Dict[str, Any]:
    """The result every step returns: ``changed`` plus the facts an operator needs."""
    result: Dict[str, Any] = {"changed": bool(changed)}
    result.update(facts)
    return result


class RbdImage:
    """``pool/image`` on the cluster of ``cli``; names are validated on construction."""

    def __init__(self, cli: CephCli, pool: str, image: str) -> None:
        self.cli = cli
        self.pool = names.pool_name(pool)
        self.name = names.image_name(image)
        self.spec = names.image_spec(pool, image)

    def __repr__(self) -> str:
        return "%s on %s" % (self.spec, self.cli.cluster.describe())

    # -- facts -------------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        """``rbd info``; NotFound names the missing pool or image in plain words."""
        try:
            return self.cli.run("info", self.spec)
        except RbdNotFound as exc:
            if "error opening pool" in exc.stderr:
                raise PoolNotFound("pool %r does not exist on the %s" % (
                    self.pool, self.cli.cluster.describe())) from None
            raise NotFound("image %s does not exist on the %s" % (
                self.spec, self.cli.cluster.describe())) from None

    def find(self) -> Optional[Dict[str, Any]]:
        """``info`` or None when the image is missing (a missing pool is still an error)."""
        try:
            return self.info()
        except PoolNotFound:
            raise
        except NotFound:
            return None

    def exists(self) -> bool:
        return self.find() is not None

    def snapshots(self) -> List[Dict[str, Any]]:
        """All snapshots, mirror and trash namespaces included."""
        return self.cli.run("snap", "ls", "--all", self.spec) or []

    def watchers(self) -> List[Dict[str, Any]]:
        return (self.cli.run("status", self.spec) or {}).get("watchers", [])

    def metadata(self) -> Dict[str, str]:
        return self.cli.run("image-meta", "list", self.spec) or {}

    def recorded(self, key: str) -> Any:
        """A JSON value the pack stored in the image's metadata, or None."""
        raw = self.metadata().get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    # -- changes -----------------------------------------------------------------------------
    def record(self, key: str, value: Any) -> None:
        """Keep migration state on the image itself: it survives any re-run or restart."""
        self.cli.run_text("image-meta", "set", self.spec, key,
                          json.dumps(value, sort_keys=True, separators=(",", ":")))

    def forget(self, key: str) -> bool:
        if key not in self.metadata():
            return False
        self.cli.run_text("image-meta", "remove", self.spec, key)
        return True


class InfoOnce(RbdImage):
    """An image whose ``rbd info`` is read once and then reused: for read-only work (a plan)
    that asks several questions of the same facts. Never for a step that changes the image."""

    def __init__(self, image: RbdImage) -> None:
        super().__init__(image.cli, image.pool, image.name)
        self._info: Optional[Dict[str, Any]] = None

    def info(self) -> Dict[str, Any]:
        if self._info is None:
            self._info = super().info()
        return self._info


def mirroring(info: Dict[str, Any]) -> Dict[str, Any]:
    """The ``mirroring`` block of ``rbd info`` (state ``disabled`` when absent)."""
    block = info.get("mirroring") or {}
    return {"state": block.get("state", "disabled"), "mode": block.get("mode"),
            "primary": block.get("primary"), "global_id": block.get("global_id")}


def facts(info: Dict[str, Any]) -> Dict[str, Any]:
    """What an operator wants to see of an image, in one flat mapping."""
    parent = info.get("parent")
    return {
        "image": info.get("name"), "size_bytes": info.get("size"),
        "features": info.get("features", []), "snapshot_count": info.get("snapshot_count", 0),
        "mirroring": mirroring(info),
        "parent": ("%s/%s@%s" % (parent.get("pool"), parent.get("image"), parent.get("snapshot"))
                   if parent else None),
    }
