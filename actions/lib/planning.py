"""Both procedures' plans: every name, pool and cluster computed and validated before any
change, every read-only check against both clusters and both clouds, how far an earlier run
got, and the migration value the later steps carry (lib.migration).

A dry run reads each thing once: the source volume is described once and its RBD image's
``rbd info`` is read once (``InfoOnce``) for every check, the room estimate and the
description."""
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

from . import names
from .capacity import require_room, written_by
from .ceph_cli import CephCli
from .checklist import Checklist
from .cinder import (describe_volume, destination_fields, destination_type, manage_host,
                     managed_facts, name_free, not_encrypted, quota_room, state_ok, USABLE)
from .errors import CephMigrateError, RefusedError
from .in_place import VERIFY_SNAPSHOT, demoted_for
from .glance import find_source_image
from .keystone import project_for
from .diff_sync import recorded_snapshots
from .migration import Migration
from .mirroring import check_mirror_pools, require_mirrorable_parent
from .rbd_image import META_ADDED_FEATURES, META_COPY_OF, InfoOnce, RbdImage, facts, mirroring
from .settings import DESTINATION, SOURCE, Settings

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
EXPORT_DIFF_STAGES = (
    "preflight",
    "gate: Ceph admin approves the copy",
    "pre-copy {source} into {target} on {destination} while in use: rounds of rbd export-diff"
    " | rbd import-diff from sync snapshots until one ships <= 64 MiB{clone}",
    "verify the copy in full at the last sync snapshot (content of allocated blocks)",
    "gate: tenant admin stops I/O on the volume",
    "final round: only what changed since the last pre-copy round",
    "verify that delta on both sides",
    "remove the sync snapshots from the copy, manage it into the destination Cinder",
    "gate: Ceph admin approves cleanup",
    "cleanup: remove the sync snapshots from the source, keep the source image",
)
PROMOTE_STAGES = VOLUME_STAGES[:6] + (
    "demote the source (read-only from now on), promote the replica {replica} on "
    "{destination}, snapshot it ({verify_snapshot})",
    "manage the replica in place into the destination Cinder (the backend of {mirrored_pool}):"
    " no copy",
    "verify content (sha256 of the read-only source and the snapshot), drop the snapshot",
    "gate: Ceph admin approves cleanup",
    "cleanup: disable mirroring on both sides{restore}, keep the source image (a plain image "
    "again)",
)
BOOT_STAGES = (
    "preflight", "gate: Ceph admin approves mirroring", "gate: tenant admin stops the server",
    "upload the volume to a raw image at the source (Glance)",
    "mirror the image ({pool}, pool mode: journaling)",
    "copy the replica into {destination_pool}, snapshot snap, protect",
    "verify content (sha256)",
    "register the image at the destination by its rbd:// location",
    "create the boot volume at the destination (copy-on-write clone)",
    "gate: Ceph admin approves cleanup", "cleanup: mirroring off, source kept",
)
# the Glance pools are mirrored in pool mode, which replicates by journal
BOOT_MIRROR_MODE = "journal"


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
    method: str = "mirror"
    clone_of: Optional[str] = None     # the source's parent (export_diff: it arrives flat)
    placement: str = "copy"            # promote: the replica is the destination volume

    @classmethod
    def build(cls, settings: Settings, volume_id: str, mode: Optional[str] = None,
              destination_image: Optional[str] = None,
              method: Optional[str] = None,
              placement: Optional[str] = None) -> "VolumeMigrationPlan":
        vid = names.volume_id(volume_id)
        image = names.cinder_image(vid)
        if placement is not None:
            placement = names.placement(placement)
        if placement == "promote" and method is None:
            method = "mirror"         # promote places rbd-mirror's replica: the mirror method
        method = names.copy_method(method or settings.copy_method)
        placement = placement or (settings.copy_placement if method == "mirror" else "copy")
        if placement == "promote":
            if method != "mirror":
                raise RefusedError("placement promote keeps the replica rbd-mirror made: it "
                                   "needs method mirror, not %s" % method)
            if destination_image not in (None, image):
                raise RefusedError("placement promote keeps the replica's name (%s): no "
                                   "destination_image" % image)
            destination_pool = settings.pools.mirrored_cinder
        else:
            destination_pool = settings.pools.destination_cinder
        return cls(
            volume_id=vid, mode=names.mirror_mode(mode or settings.mirror_mode),
            source_cluster=settings.source.name, destination_cluster=settings.destination.name,
            mirrored_pool=settings.pools.mirrored_cinder, image=image,
            destination_pool=destination_pool,
            destination_image=names.image_name(destination_image or image),
            copy_features=settings.copy_features, method=method, placement=placement)

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
            "source": "%s/%s" % (self.mirrored_pool, self.image),
            "mirrored_pool": self.mirrored_pool, "verify_snapshot": VERIFY_SNAPSHOT,
            "clone": "; a clone of %s: its parent's data is read through and the copy is "
                     "flat (the source is not changed)" % self.clone_of if self.clone_of else "",
        }
        stages = (EXPORT_DIFF_STAGES if self.method == "export_diff" else
                  PROMOTE_STAGES if self.placement == "promote" else VOLUME_STAGES)
        return [stage.format(**values) for stage in stages]

    def as_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["copy_features"] = list(self.copy_features)
        data["source_spec"] = "%s:%s/%s" % (self.source_cluster, self.mirrored_pool, self.image)
        data["destination_spec"] = "%s:%s/%s" % (self.destination_cluster,
                                                 self.destination_pool, self.destination_image)
        data["stages"] = self.stages()
        return data


# -- the two dry runs ------------------------------------------------------------------------
def plan_volume_migration(settings: Settings, volume_id: str, mode: Optional[str] = None,
                          destination_image: Optional[str] = None,
                          destination_project: Optional[str] = None,
                          allow_in_use: bool = False,
                          method: Optional[str] = None,
                          placement: Optional[str] = None) -> Dict[str, Any]:
    """Procedure 1's dry run: the Ceph plan and checks, plus Cinder's when clouds are set."""
    plan = VolumeMigrationPlan.build(settings, volume_id, mode, destination_image, method,
                                     placement)
    source = InfoOnce(plan.source(settings))
    plan = replace(plan, clone_of=facts(source.find() or {})["parent"])
    report = preflight(settings, plan, source)
    return _with_openstack(settings, report, source, Migration(
        procedure="data", volume_id=plan.volume_id, volume=None, destination_project=None,
        mode=plan.mode, mirrored_pool=plan.mirrored_pool, destination_pool=plan.destination_pool,
        image=plan.image, destination_image=plan.destination_image, method=plan.method,
        placement=plan.placement),
        destination_project, allow_in_use)


def plan_boot_volume_migration(settings: Settings, volume_id: str,
                               destination_project: Optional[str] = None,
                               allow_in_use: bool = False) -> Dict[str, Any]:
    """Procedure 2's dry run: Cinder and Glance at both ends, the Glance pools in Ceph."""
    pools = settings.pools
    vid = names.volume_id(volume_id)
    volume_image = InfoOnce(settings.image(SOURCE, pools.mirrored_cinder, names.cinder_image(vid)))
    probe = "ceph_migrate-preflight"           # a name only used to address the pools
    checklist = Checklist()
    checklist.run("Glance pools are mirrored to the destination", lambda: check_mirror_pools(
        settings.image(SOURCE, pools.mirrored_glance, probe),
        settings.image(DESTINATION, pools.mirrored_glance, probe)))
    if checklist.run("destination Glance pool exists",
                     lambda: pool_exists(settings.rbd(DESTINATION), pools.destination_glance)):
        checklist.run("both clusters have room", lambda: _boot_room(settings, volume_image))
    stages = [stage.format(pool=pools.mirrored_glance, destination_pool=pools.destination_glance)
              for stage in BOOT_STAGES]
    report = checklist.report(warnings=[], plan={
        "volume_id": vid, "procedure": "boot",
        "mirrored_pool": pools.mirrored_glance, "destination_pool": pools.destination_glance,
        "stages": stages})
    return _with_openstack(settings, report, volume_image, Migration(
        procedure="boot", volume_id=vid, volume=None, destination_project=None,
        mode=BOOT_MIRROR_MODE, mirrored_pool=pools.mirrored_glance,
        destination_pool=pools.destination_glance, image=None, destination_image=None),
        destination_project, allow_in_use)


def _boot_room(settings: Settings, volume: RbdImage) -> str:
    """The upload writes the whole volume into the source Glance pool (thick); the replica
    and the copy in the destination's Glance pools each as much again."""
    pools = settings.pools
    size = written_by(volume, thick=True)
    return "; ".join((
        require_room(settings.ceph(SOURCE), pools.mirrored_glance, [pools.mirrored_glance],
                     size, settings.capacity_reserve),
        require_room(settings.ceph(DESTINATION), "%s and %s" % (
            pools.mirrored_glance, pools.destination_glance),
            [pools.mirrored_glance, pools.destination_glance], 2 * size,
            settings.capacity_reserve)))


def _with_openstack(settings: Settings, report: Dict[str, Any], volume_image: RbdImage,
                    migration: Migration, destination_project: Optional[str],
                    allow_in_use: bool) -> Dict[str, Any]:
    """The clouds' checks added to ``report``, and the migration value, with the volume and
    the destination project they found."""
    report["migration"] = migration.as_dict()
    if not settings.clouds:
        report["warnings"].append("OpenStack checks skipped: source_cloud/destination_cloud "
                                  "are not configured")
        return report
    try:
        volume = describe_volume(settings, migration.volume_id, rbd=volume_image)
    except CephMigrateError as exc:
        report["checks"].append({"check": "source volume exists in Cinder", "ok": False,
                                 "detail": str(exc)})
        report["ok"] = False
        return report
    cloud = preflight_volume(settings, volume, migration.procedure, destination_project,
                             allow_in_use, migration.method, migration.placement)
    report["checks"].extend(cloud["checks"])
    report["warnings"].extend(cloud["warnings"])
    report["ok"] = report["ok"] and cloud["ok"]
    report["volume"] = volume
    report["destination_project"] = cloud["destination_project"]
    report["already_migrated"] = already_migrated(
        settings, volume, cloud["migrated_volume"], migration.procedure,
        volume_image if migration.procedure == "data" else None)
    report["migration"] = replace(migration, volume=volume,
                                  destination_project=cloud["destination_project"]).as_dict()
    return report


# -- Ceph checks -----------------------------------------------------------------------------
def preflight(settings: Settings, plan: VolumeMigrationPlan,
              source: Optional[RbdImage] = None) -> Dict[str, Any]:
    """Check the plan against both clusters (read-only). ``ok`` is false when a check blocks."""
    checklist = Checklist()
    check = checklist.run
    source = source or InfoOnce(plan.source(settings))
    replica, target = plan.replica(settings), plan.target(settings)
    info = check("source image exists", lambda: facts(source.info()))
    mirrored = plan.method == "mirror"
    in_place = plan.placement == "promote"
    demoted: List[bool] = []
    if info and in_place:
        check("source image is primary, not mirrored yet, or demoted for this migration",
              lambda: _demoted_or_primary(source, replica, info, plan, demoted))
    if info and mirrored and not in_place:
        check("source image is primary or not mirrored yet", lambda: _primary_or_new(info, plan))
    if info and mirrored:
        check("source image is not a clone of an unmirrored parent",
              lambda: _parent_ok(source, info))
    elif info:
        check("source image is writable (snapshots are taken of it)",
              lambda: _writable(info))
    if mirrored:
        check("pools are mirrored to the destination",
              lambda: check_mirror_pools(source, replica))
    if in_place:
        if check("the replica is this image's or not there yet",
                 lambda: _replica_ours(replica, info)) and info:
            check("destination has room", lambda: _room(settings, plan, source, replica,
                                                        target))
    elif check("destination pool exists", lambda: pool_exists(target.cli, target.pool)):
        if check("destination name is free", lambda: _target_free(target)) and info:
            check("destination has room", lambda: _room(settings, plan, source, replica,
                                                        target))
    warnings = []
    if info and info["snapshot_count"] and mirrored:
        warnings.append("the source has %d snapshot(s); they are mirrored too (slower)"
                        % info["snapshot_count"])
    if info and mirrored and plan.mode == "journal" and source.watchers():
        warnings.append("the source is in use: enabling journaling on an open image may freeze "
                        "the guest (snapshot mode avoids this)")
    report = checklist.report(warnings=warnings, plan=plan.as_dict())
    if in_place:    # a re-run after the demotion skips the gates its first run passed
        report["in_place"] = {"source_demoted": bool(demoted)}
    return report


def _demoted_or_primary(source: RbdImage, replica: RbdImage, info: Dict[str, Any],
                        plan: VolumeMigrationPlan, demoted: List[bool]) -> str:
    """An earlier run demoted the source for this promotion (noted in ``demoted``), else the
    usual primary-or-new check (a demoted image of anyone else is refused)."""
    if demoted_for(source, replica, source.info()):
        demoted.append(True)
        return "demoted by an earlier run for this promotion (a re-run)"
    return _primary_or_new(info, plan)


def _replica_ours(replica: RbdImage, info: Optional[Dict[str, Any]]) -> str:
    found = replica.find()
    if found is None:
        return "%s is not there yet (rbd-mirror makes it)" % replica.spec
    theirs, ours = mirroring(found)["global_id"], mirroring(info or {})["global_id"]
    if ours and theirs == ours:
        return "%s is this image's replica (a re-run)" % replica.spec
    raise CephMigrateError("%s exists at the destination and is not this image's replica: "
                           "rename or remove it first" % replica.spec)


def _writable(info: Dict[str, Any]) -> str:
    if mirroring(info)["primary"] is False:
        raise CephMigrateError("the source image is a non-primary replica (read-only): no "
                               "snapshot can be taken of it")
    return ("a clone of %s: its parent's data is read through, the copy is flat" % info["parent"]
            if info["parent"] else "not a clone")


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
    if plan.method == "export_diff":     # one copy, flat: a clone takes its parent's data too
        return require_room(settings.ceph(DESTINATION), plan.destination_pool,
                            [plan.destination_pool],
                            0 if target.exists() else written_by(source,
                                                                 thick=bool(plan.clone_of)),
                            settings.capacity_reserve)
    used = written_by(source)
    copies = int(not replica.exists()) + int(plan.placement != "promote" and not target.exists())
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


# -- OpenStack checks ------------------------------------------------------------------------
def preflight_volume(settings: Settings, volume: Dict[str, Any], procedure: str,
                     destination_project: Optional[str] = None,
                     allow_in_use: bool = False, method: str = "mirror",
                     placement: str = "copy") -> Dict[str, Any]:
    """Every OpenStack check for one volume, read-only; ``ok`` false when one blocks."""
    checklist = Checklist()
    check = checklist.run
    warnings: List[str] = []
    check("volume state allows a migration", lambda: state_ok(volume, allow_in_use))
    check("volume type is not encrypted", lambda: not_encrypted(volume))
    if procedure == "data" and volume["bootable"]:
        warnings.append("the volume is bootable: migrate_boot_volume (through Glance) keeps it "
                        "bootable for new servers; the data procedure keeps the flag too")
    if volume.get("clone_of") and procedure == "data" and method == "mirror":
        warnings.append("the RBD image is a clone of %s: mirror its parent or flatten it, or "
                        "use method export_diff (the copy arrives flat)" % volume["clone_of"])
    dest = settings.cloud(DESTINATION).connect()
    project = check("destination project exists",
                    lambda: project_for(dest, volume, destination_project))
    in_place = placement == "promote"
    volume_type = (in_place and settings.promote_volume_type) or volume["volume_type"]
    check("destination volume type exists", lambda: destination_type(dest, volume_type))
    check("destination accepts the volume's fields",
          lambda: "; ".join(destination_fields(volume)["notes"]) or "name, description and "
          "metadata as they are")
    migrated: List[Any] = []          # an earlier run's volume, seen by the name check
    if project:
        check("destination name is free",
              lambda: name_free(settings, dest, project["id"], volume, migrated))
        check("destination quota has room", lambda: quota_room(dest, project["id"], volume))
    if procedure == "data":
        pool = settings.pools.mirrored_cinder if in_place else settings.pools.destination_cinder
        check("destination Cinder pool is managed by a backend",
              lambda: manage_host(settings, dest, pool))
    return checklist.report(warnings=warnings, destination_project=project,
                            migrated_volume=migrated[0] if migrated else None)


# -- how far an earlier run got --------------------------------------------------------------
def cleanup_pending(image: RbdImage) -> bool:
    """The source image is still mirrored, still carries features the pack added or still
    has the sync snapshots it took (export_diff)."""
    info = image.find()
    if info is None:
        return False
    return (mirroring(info)["state"] != "disabled"
            or bool(image.recorded(META_ADDED_FEATURES))
            or bool(recorded_snapshots(image)))


def already_migrated(settings: Settings, volume: Dict[str, Any], existing: Any,
                     procedure: str, source: Optional[RbdImage] = None) -> Optional[Dict[str, Any]]:
    """None, or what is left of an earlier run that made ``existing`` (the destination volume
    the preflight found carrying ``volume``'s id), so that a re-run of a completed migration
    goes straight to what is left (the cleanup) instead of copying again.

    ``usable`` false means that volume is in a failed state (roll it back first); for the boot
    procedure ``image_id`` is the source Glance image the earlier run uploaded. ``source`` is
    the mirrored image when the caller has it already.
    """
    if existing is None:
        return None
    pools = settings.pools
    image_id = None
    if procedure == "boot":
        uploaded = find_source_image(settings, volume)
        image_id = uploaded.id if uploaded is not None else None
        source = settings.image(SOURCE, pools.mirrored_glance, image_id) if image_id else None
    elif source is None:
        source = settings.image(SOURCE, pools.mirrored_cinder, names.cinder_image(volume["id"]))
    return {"volume": managed_facts(settings, existing), "usable": existing.status in USABLE,
            "image_id": image_id,
            "cleanup_pending": bool(source is not None and cleanup_pending(source))}
