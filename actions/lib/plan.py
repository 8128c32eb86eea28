"""The migration plan: every name, pool and cluster computed and validated before any change,
and the preflight that checks the plan against both clusters without changing anything."""
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple

from . import names
from .capacity import require_room, written_by
from .ceph_cli import CephCli
from .checklist import Checklist
from .errors import CephMigrateError
from .mirroring import check_mirror_pools, require_mirrorable_parent
from .rbd_image import META_COPY_OF, RbdImage, facts
from .settings import DESTINATION, SOURCE, Settings

CINDER_IMAGE_PREFIX = "volume-"

VOLUME_STAGES = (
    "preflight",
    "gate: Ceph admin approves mirroring",
    "enable mirroring ({mode} mode{features})",
    "wait until the replica is in sync",
    "gate: tenant admin stops I/O on the volume",
    "final sync ({final})",
    "copy {replica} into {target} on {destination}",
    "verify content (sha256 of source and copy)",
    "manage the copy into the destination Cinder",
    "gate: Ceph admin approves cleanup",
    "cleanup: disable mirroring{restore}, keep the source image",
)


@dataclass(frozen=True)
class VolumeMigrationPlan:
    """Procedure 1 (data volume) for one Cinder volume, as names on both clusters."""

    volume_id: str
    mode: str
    source_cluster: str
    destination_cluster: str
    mirrored_pool: str
    image: str                     # volume-<id>, same name in the mirrored pool on both sides
    destination_pool: str
    destination_image: str
    copy_features: Tuple[str, ...]

    @classmethod
    def build(cls, settings: Settings, volume_id: str, mode: Optional[str] = None,
              destination_image: Optional[str] = None) -> "VolumeMigrationPlan":
        vid = names.volume_id(volume_id)
        image = CINDER_IMAGE_PREFIX + vid
        return cls(
            volume_id=vid, mode=names.mirror_mode(mode or settings.mirror_mode),
            source_cluster=settings.source.name, destination_cluster=settings.destination.name,
            mirrored_pool=settings.pools.mirrored_cinder, image=image,
            destination_pool=settings.pools.destination_cinder,
            destination_image=names.image_name(destination_image or image),
            copy_features=settings.copy_features)

    def source(self, settings: Settings) -> RbdImage:
        return settings.image(SOURCE, self.mirrored_pool, self.image)

    def replica(self, settings: Settings) -> RbdImage:
        return settings.image(DESTINATION, self.mirrored_pool, self.image)

    def target(self, settings: Settings) -> RbdImage:
        return settings.image(DESTINATION, self.destination_pool, self.destination_image)

    def stages(self) -> List[str]:
        values = {
            "mode": self.mode,
            "features": ", exclusive-lock + journaling enabled if missing"
                        if self.mode == "journal" else ", no feature change",
            "final": "a last mirror snapshot" if self.mode == "snapshot"
                     else "journal replayed to the master position",
            "replica": "%s/%s" % (self.mirrored_pool, self.image),
            "target": "%s/%s" % (self.destination_pool, self.destination_image),
            "destination": self.destination_cluster,
            "restore": ", remove the features it added" if self.mode == "journal" else "",
        }
        return [stage.format(**values) for stage in VOLUME_STAGES]

    def as_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["copy_features"] = list(self.copy_features)
        data["source_spec"] = "%s:%s/%s" % (self.source_cluster, self.mirrored_pool, self.image)
        data["destination_spec"] = "%s:%s/%s" % (self.destination_cluster,
                                                 self.destination_pool, self.destination_image)
        data["stages"] = self.stages()
        return data


def preflight(settings: Settings, plan: VolumeMigrationPlan) -> Dict[str, Any]:
    """Check the plan against both clusters (read-only). ``ok`` is false when a check blocks."""
    checklist = Checklist()
    check = checklist.run
    source, replica, target = plan.source(settings), plan.replica(settings), plan.target(settings)
    info = check("source image exists", lambda: facts(source.info()))
    if info:
        check("source image is primary or not mirrored yet", lambda: _primary_or_new(info, plan))
        check("source image is not a clone of an unmirrored parent",
              lambda: _parent_ok(source, info))
    check("pools are mirrored to the destination", lambda: check_mirror_pools(source, replica))
    if check("destination pool exists", lambda: pool_exists(target.cli, target.pool)):
        if check("destination name is free", lambda: _target_free(target)) and info:
            check("destination has room", lambda: _room(settings, plan, source, replica,
                                                        target))
    warnings = []
    if info and info["snapshot_count"]:
        warnings.append("the source has %d snapshot(s); they are mirrored too (slower)"
                        % info["snapshot_count"])
    if info and plan.mode == "journal" and source.watchers():
        warnings.append("the source is in use: enabling journaling on an open image may freeze "
                        "the guest (snapshot mode avoids this)")
    return checklist.report(warnings=warnings, plan=plan.as_dict())


def _primary_or_new(info: Dict[str, Any], plan: VolumeMigrationPlan) -> str:
    state = info["mirroring"]
    if state["state"] == "disabled":
        return "not mirrored yet"
    if not state["primary"]:
        raise CephMigrateError("the source image is a non-primary replica: it is already "
                               "mirrored the other way")
    if state["mode"] != plan.mode:
        raise CephMigrateError("the source image is already mirrored in %s mode, the plan says %s"
                               % (state["mode"], plan.mode))
    return "already mirrored in %s mode (a re-run)" % state["mode"]


def _parent_ok(source: RbdImage, info: Dict[str, Any]) -> str:
    require_mirrorable_parent(source, source.info())
    return "parent %s is mirrored" % info["parent"] if info["parent"] else "not a clone"


def pool_exists(cli: CephCli, pool: str) -> str:
    cli.run("pool", "stats", names.pool_name(pool))
    return "pool %s exists" % pool


def _room(settings: Settings, plan: VolumeMigrationPlan, source: RbdImage, replica: RbdImage,
          target: RbdImage) -> str:
    """At its peak the destination holds the replica and the copy, each as much as the source
    uses (less what an earlier run already wrote there)."""
    used = written_by(source)
    copies = int(not replica.exists()) + int(not target.exists())
    return require_room(settings.ceph(DESTINATION), "%s and %s" % (
        plan.mirrored_pool, plan.destination_pool), [plan.mirrored_pool, plan.destination_pool],
        used * copies, settings.capacity_reserve)


def _target_free(target: RbdImage) -> str:
    existing = target.find()
    if existing is None:
        return "%s is free" % target.spec
    if target.recorded(META_COPY_OF):
        return "%s already holds this migration's copy (a re-run)" % target.spec
    raise CephMigrateError("%s already exists at the destination" % target.spec)
