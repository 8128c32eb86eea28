"""Cinder: a source volume as a migration sees it and the checks it must pass, and at the
destination the volume the pack makes of the copy (``cinder manage``) or of a registered image,
found again on a re-run by the source's id it carries and by its RBD image's records."""
import re
import unicodedata
from typing import Any, Callable, Dict, List, Optional

from . import names
from .clouds import OpenStackError, api
from .errors import NotFound, RefusedError
from .keystone import project_and_domain, project_for, resolve_project
from .migration import Migration
from .names import SOURCE_ID_KEY
from .rbd_image import (META_COPY_OF, META_VERIFIED, RbdImage, facts, mirroring, outcome,
                        where)
from .settings import DESTINATION, SOURCE, Settings

BAD_VOLUME_STATES = ("error", "error_deleting", "error_managing", "error_restoring",
                     "error_extending", "deleting", "creating", "maintenance")
USABLE = ("available", "in-use")


def describe_volume(settings: Settings, volume_id: str, conn: Any = None,
                    rbd: Optional[RbdImage] = None) -> Dict[str, Any]:
    """What a migration needs to know of a source volume, from Cinder and from Ceph.

    ``rbd`` is its RBD image when the caller has it already (a plan reads it once)."""
    vid = names.volume_id(volume_id)
    conn = conn or settings.cloud(SOURCE).connect()
    volume = api("source volume %s" % vid, lambda: conn.block_storage.get_volume(vid))
    vtype = find_type(conn, volume.volume_type)
    project, domain = project_and_domain(conn, volume.project_id)
    found = (rbd or settings.image(SOURCE, settings.pools.mirrored_cinder,
                                   names.cinder_image(vid))).find()
    rbd_facts = facts(found) if found else None
    return {
        "id": volume.id, "name": volume.name or "", "description": volume.description or "",
        "size_gib": volume.size, "status": volume.status, "bootable": bool(volume.is_bootable),
        "attached_to": [a.get("server_id") for a in volume.attachments or []],
        "volume_type": volume.volume_type, "encrypted": bool(volume.is_encrypted) or
        type_encrypted(conn, vtype), "multiattach": bool(volume.is_multiattach),
        "metadata": dict(volume.metadata or {}),
        "image_metadata": dict(volume.volume_image_metadata or {}),
        "project_id": volume.project_id, "project_name": project, "project_domain": domain,
        "availability_zone": volume.availability_zone,
        "rbd_image": rbd_facts, "clone_of": rbd_facts["parent"] if rbd_facts else None,
    }


def volume_state(settings: Settings, volume_id: str) -> Dict[str, Any]:
    """A source volume's status and attachments now (what may change between a plan and a
    step: the tenant stops the server at a gate in between)."""
    conn = settings.cloud(SOURCE).connect()
    volume = api("source volume %s" % volume_id, lambda: conn.block_storage.get_volume(volume_id))
    return {"status": volume.status,
            "attached_to": [a.get("server_id") for a in volume.attachments or []]}


# -- checks ----------------------------------------------------------------------------------
def state_ok(volume: Dict[str, Any], allow_in_use: bool) -> str:
    if volume["status"] in BAD_VOLUME_STATES or volume["status"].startswith("error"):
        raise RefusedError("volume %s is %s" % (volume["id"], volume["status"]))
    if volume["status"] == "in-use" and not allow_in_use:
        servers = ", ".join(map(str, volume["attached_to"]))
        raise RefusedError("volume %s is in use (attached to %s): stop the server first or pass "
                           "allow_in_use" % (volume["id"], servers))
    if volume["status"] not in USABLE:
        raise RefusedError("volume %s is %s, not available" % (volume["id"], volume["status"]))
    return volume["status"]


def not_encrypted(volume: Dict[str, Any]) -> str:
    if volume["encrypted"]:
        raise RefusedError("volume %s has the encrypted volume type %r: Cinder refuses to manage "
                           "into an encrypted type, and its key is not migrated"
                           % (volume["id"], volume["volume_type"]))
    return "volume type %s" % volume["volume_type"]


# what Cinder's manage API accepts (cinder/api/validation/parameter_types.py), stricter than
# what its create API let into the source: no line breaks or other control characters in a
# description, metadata keys from a small alphabet, every text at most 255 characters
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9_:. /-]{1,255}$")
_MAX_TEXT = 255


def _printable(char: str) -> bool:
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def destination_fields(volume: Dict[str, Any]) -> Dict[str, Any]:
    """The name, description and metadata ``cinder manage`` gets, in a form it accepts.

    A description with characters manage rejects is carried with those characters (and
    backslashes) written as Python escapes (a line break as ``\\n``), so nothing of it is lost;
    what cannot be carried (a metadata key manage rejects, a text too long) is refused here,
    in the plan, before anything changes. ``notes`` says what was rewritten."""
    notes: List[str] = []
    description = volume["description"] or ""
    if not all(map(_printable, description)):
        description = "".join(c if _printable(c) and c != "\\" else
                              c.encode("unicode_escape").decode("ascii") for c in description)
        notes.append("the description's line breaks and control characters are carried as "
                     "escapes (\\n): Cinder's manage refuses them")
    metadata = dict(volume["metadata"], **{SOURCE_ID_KEY: volume["id"]})
    problems = ["metadata key %r: only letters, digits and _:. /- are accepted" % key
                for key in sorted(metadata) if not _METADATA_KEY.match(key)]
    problems += ["metadata %r is longer than %d characters" % (key, _MAX_TEXT)
                 for key, value in sorted(metadata.items()) if len(str(value)) > _MAX_TEXT]
    for field, text in (("name", volume["name"] or ""), ("description", description)):
        if len(text) > _MAX_TEXT:
            problems.append("the %s is %d characters long, %d at most%s" % (
                field, len(text), _MAX_TEXT, " once escaped" if notes and field ==
                "description" else ""))
    if problems:
        raise RefusedError("the destination Cinder would refuse to manage volume %s: %s; change "
                           "it at the source first" % (volume["id"], "; ".join(problems)))
    return {"name": volume["name"] or None, "description": description or None,
            "metadata": {k: str(v) for k, v in metadata.items()}, "notes": notes}


def destination_type(conn: Any, type_name: Optional[str]) -> str:
    if not type_name:
        return "default volume type"
    if find_type(conn, type_name) is None:
        raise NotFound("volume type %r does not exist at the destination: create it (same "
                       "name) first" % type_name)
    return type_name


def name_free(settings: Settings, conn: Any, project_id: str, volume: Dict[str, Any],
              migrated: List[Any]) -> str:
    """Refuses a name collision; a volume an earlier run made is appended to ``migrated``."""
    for other in project_volumes(conn, project_id):
        if (other.metadata or {}).get(SOURCE_ID_KEY) == volume["id"] and \
                made_by_pack(settings, other, volume["id"]):
            migrated.append(other)
            return "already migrated as %s (a re-run)" % other.id
        if volume["name"] and other.name == volume["name"]:
            raise RefusedError("the destination project already has a volume named %r (%s)"
                               % (volume["name"], other.id))
    return "no volume named %r" % volume["name"]


def quota_room(conn: Any, project_id: str, volume: Dict[str, Any]) -> str:
    quota = api("quota of %s" % project_id,
                lambda: conn.block_storage.get_quota_set(project_id, usage=True))
    problems = []
    for key, need in (("gigabytes", volume["size_gib"]), ("volumes", 1)):
        usage = (getattr(quota, "usage", None) or {}).get(key, 0) or 0
        limit = getattr(quota, key, -1)
        if limit is not None and limit >= 0 and usage + need > limit:
            problems.append("%s: %s used of %s, %s needed" % (key, usage, limit, need))
    if problems:
        raise RefusedError("destination quota too small: " + "; ".join(problems))
    return "enough quota"


def manage_host(settings: Settings, conn: Any, rbd_pool: Optional[str] = None) -> str:
    """The Cinder host@backend#pool that manages ``rbd_pool`` (the destination Cinder pool; the
    mirrored pool for a volume placed in place). ``destination_manage_host`` names the
    destination Cinder pool's."""
    wanted = rbd_pool or settings.pools.destination_cinder
    if settings.destination_manage_host and wanted == settings.pools.destination_cinder:
        return settings.destination_manage_host
    pools = api("backend pools", lambda: list(conn.block_storage.backend_pools()))
    for pool in pools:
        capabilities = getattr(pool, "capabilities", None) or {}
        if pool.name.endswith("#" + wanted) or capabilities.get("pool_name") == wanted:
            return pool.name
    raise NotFound("no Cinder backend pool at the destination serves pool %r (seen: %s); set "
                   "destination_manage_host" % (wanted, ", ".join(p.name for p in pools)))


# -- procedure 1: manage the copy ------------------------------------------------------------
def manage_volume(settings: Settings, volume_id: str, destination_project: Optional[str] = None,
                  image: Optional[str] = None, timeout: float = 300,
                  migration: Optional[Migration] = None) -> Dict[str, Any]:
    """Make the copied RBD image a volume of the tenant's project at the destination.

    Managed with the destination admin scoped to the tenant's project (by default the project
    of the source's name), so the tenant owns it at once. Name, description, metadata, type and
    bootable flag come from the source volume (the plan's, when its ``migration`` is given);
    the source's id goes into the metadata. Cinder renames the image to volume-<new id>.
    """
    volume = (migration and migration.volume) or describe_volume(settings, volume_id)
    not_encrypted(volume)
    image = names.image_name(image or names.cinder_image(volume["id"]))
    admin = settings.cloud(DESTINATION).connect()
    project_id = ((migration and migration.project(destination_project))
                  or project_for(admin, volume, destination_project))["id"]
    existing = find_migrated_volume(settings, admin, project_id, volume["id"])
    if existing is not None:
        return _found_again(settings, existing, volume["id"])
    in_place = bool(migration and migration.placement == "promote")
    target = settings.image(DESTINATION, migration.destination_pool if migration
                            else settings.pools.destination_cinder, image)
    if not target.exists():
        raise NotFound("the copy %r does not exist: copy the replica first" % target)
    if in_place and mirroring(target.info())["primary"] is not True:
        raise RefusedError("%r is not promoted yet: promote_in_place first" % target)
    host = manage_host(settings, admin, target.pool)
    volume_type = (in_place and settings.promote_volume_type) or volume["volume_type"]
    tenant = settings.cloud(DESTINATION).connect(project_id=project_id)
    fields = destination_fields(volume)
    managed = api("cinder manage of %s" % target.spec, lambda: tenant.block_storage.manage_volume(
        host=host, ref={"source-name": image}, name=fields["name"],
        description=fields["description"], volume_type=volume_type,
        availability_zone=None, metadata=fields["metadata"], bootable=volume["bootable"]))
    managed = wait_for_volume(admin, managed.id, timeout, failures=["error", "error_managing"])
    _record_rename(settings, volume["id"], target.spec, managed.id)
    return outcome(True, **managed_facts(settings, managed))


def _found_again(settings: Settings, existing: Any, what: str) -> Dict[str, Any]:
    """An earlier run's manage of WHAT: its volume as it is, unless that manage failed."""
    if existing.status not in USABLE:
        raise RefusedError("an earlier manage of %s left volume %s in state %s: roll it back "
                           "first" % (what, existing.id, existing.status))
    return outcome(False, **managed_facts(settings, existing))


def _tagged(conn: Any, project_id: str, mark: str, proven: Callable[[Any], bool]) -> Any:
    """The volume of PROJECT_ID tagged with MARK (a hint a tenant could write too) that
    PROVEN shows the pack made, or None."""
    return next((v for v in project_volumes(conn, project_id)
                 if (v.metadata or {}).get(SOURCE_ID_KEY) == mark and proven(v)), None)


def find_migrated_volume(settings: Settings, conn: Any, project_id: str, source_id: str) -> Any:
    """The destination volume an earlier run made of ``source_id``: tagged with it and proven
    by its RBD image (``made_by_pack``)."""
    return _tagged(conn, project_id, source_id, lambda v: made_by_pack(settings, v, source_id))


def find_managed_disk(settings: Settings, conn: Any, project_id: str, source: RbdImage) -> Any:
    """The destination volume an earlier run managed from the pack's copy of SOURCE (a Nova
    disk, ``vms/<uuid>_disk``): tagged with its name (a hint) and proven by the copy's record
    (``copy_of``, which cinder manage keeps); a tagged volume without an RBD image is an
    earlier manage in flight or failed (no data to lose)."""
    def proven(volume: Any) -> bool:
        image = volume_image(settings, volume.id)
        if image.find() is None:
            return volume.status not in USABLE
        return (image.recorded(META_COPY_OF) or {}).get("source") == where(source)
    return _tagged(conn, project_id, source.name, proven)


def manage_disk(settings: Settings, copy: RbdImage, source: RbdImage, project_id: str,
                name: str, description: str, timeout: float = 300) -> Dict[str, Any]:
    """The pack's copy of a Nova disk (COPY, in the destination Cinder pool) made a bootable
    volume of PROJECT_ID at the destination, tagged with the disk's name; found again on a
    re-run (find_managed_disk). The destination's default volume type (the disk had none)."""
    admin = settings.cloud(DESTINATION).connect()
    existing = find_managed_disk(settings, admin, project_id, source)
    if existing is not None:
        return _found_again(settings, existing, source.spec)
    made = copy.recorded(META_COPY_OF) if copy.find() is not None else None
    if not made or made.get("source") != where(source):
        raise NotFound("the copy %r of %r does not exist: copy the disk first" % (copy, source))
    tenant = settings.cloud(DESTINATION).connect(project_id=project_id)
    host = manage_host(settings, admin, copy.pool)
    managed = api("cinder manage of %s" % copy.spec, lambda: tenant.block_storage.manage_volume(
        host=host, ref={"source-name": copy.name}, name=name, description=description,
        availability_zone=None, metadata={SOURCE_ID_KEY: source.name}, bootable=True))
    managed = wait_for_volume(admin, managed.id, timeout, failures=["error", "error_managing"])
    return outcome(True, **managed_facts(settings, managed))


def made_by_pack(settings: Settings, volume: Any, source_id: str) -> bool:
    """Whether a destination volume's RBD image is what the pack made for ``source_id``: the
    managed copy of its replica (``copy_of``, which cinder manage keeps) or a clone of a copy
    the pack made in the destination Glance pool (the boot procedure's volume). A tagged volume
    without an RBD image holds no data: taken as an earlier run's manage in flight or failed."""
    pools = settings.pools
    image = volume_image(settings, volume.id)
    info = image.find()
    if info is None:
        # no data to lose: a manage still renaming the copy, or one that failed
        return volume.status not in USABLE
    replica = settings.image(DESTINATION, pools.mirrored_cinder, names.cinder_image(source_id))
    source = settings.image(SOURCE, pools.mirrored_cinder, names.cinder_image(source_id))
    # the copy of the replica (mirror), or of the source itself (export_diff)
    if (image.recorded(META_COPY_OF) or {}).get("source") in (where(replica), where(source)):
        return True
    # a clone carries its parent's metadata (librbd copies it): the parent decides
    parent = info.get("parent") or {}
    if parent.get("pool") != pools.destination_glance or not parent.get("image"):
        return False
    return bool(settings.image(DESTINATION, parent["pool"], parent["image"])
                .recorded(META_COPY_OF))


def volume_image(settings: Settings, volume_id: str) -> RbdImage:
    """A destination volume's RBD image: in the destination Cinder pool, or in the mirrored
    pool when it was placed in place (placement promote); the former when in neither."""
    pools = settings.pools
    name = names.cinder_image(volume_id)
    image = settings.image(DESTINATION, pools.destination_cinder, name)
    if image.exists():
        return image
    in_place = settings.image(DESTINATION, pools.mirrored_cinder, name)
    return in_place if in_place.exists() else image


def wait_for_volume(conn: Any, volume_id: str, timeout: float,
                    failures: Optional[List[str]] = None, status: str = "available") -> Any:
    volume = api("volume %s" % volume_id, lambda: conn.block_storage.get_volume(volume_id))
    return api("waiting for volume %s to be %s" % (volume_id, status),
               lambda: conn.block_storage.wait_for_status(
                   volume, status, failures=failures or ["error"], interval=1, wait=timeout))


def managed_facts(settings: Settings, volume: Any) -> Dict[str, Any]:
    return {"volume_id": volume.id, "name": volume.name, "size_gib": volume.size,
            "status": volume.status, "project_id": volume.project_id,
            "volume_type": volume.volume_type, "bootable": bool(volume.is_bootable),
            "metadata": dict(volume.metadata or {}),
            "rbd_image": volume_image(settings, volume.id).spec}


def _record_rename(settings: Settings, source_id: str, old_spec: str, new_id: str) -> None:
    """Cinder renamed the verified copy: keep the source's verification record pointing at it."""
    source = settings.image(SOURCE, settings.pools.mirrored_cinder, names.cinder_image(source_id))
    record = source.find() and source.recorded(META_VERIFIED)
    old = "%s:%s" % (settings.destination.name, old_spec)
    if record and record.get("destination") == old:
        record["destination"] = "%s:%s/%s" % (settings.destination.name,
                                              settings.pools.destination_cinder,
                                              names.cinder_image(new_id))
        record["managed_as"] = new_id
        source.record(META_VERIFIED, record)


# -- procedure 2: the boot volume from the registered image ----------------------------------
def create_volume_from_image(settings: Settings, image_id: str, destination_project: str,
                             name: str, size_gib: int, volume_type: Optional[str] = None,
                             source_id: Optional[str] = None, timeout: float = 540,
                             migration: Optional[Migration] = None) -> Dict[str, Any]:
    """A volume of the tenant from the registered image (Cinder clones it copy-on-write when
    the image is raw and in the same Ceph cluster)."""
    admin = settings.cloud(DESTINATION).connect()
    project = migration and migration.project(destination_project)
    project_id = (project or resolve_project(admin, destination_project))["id"]
    marker = source_id or (migration and migration.volume_id) or image_id
    existing = find_migrated_volume(settings, admin, project_id, marker)
    if existing is not None:
        return outcome(False, **managed_facts(settings, existing))
    tenant = settings.cloud(DESTINATION).connect(project_id=project_id)
    created = api("creating a volume from image %s" % image_id,
                  lambda: tenant.block_storage.create_volume(
                      name=name, size=size_gib, image_id=image_id, volume_type=volume_type,
                      metadata={SOURCE_ID_KEY: marker}))
    created = wait_for_volume(admin, created.id, timeout)
    return outcome(True, **managed_facts(settings, created))


# -- helpers ---------------------------------------------------------------------------------
def find_type(conn: Any, name: Optional[str]) -> Any:
    if not name:
        return None
    return api("volume type %s" % name,
               lambda: conn.block_storage.find_type(name, ignore_missing=True))


def type_encrypted(conn: Any, vtype: Any) -> bool:
    if vtype is None:
        return False
    import openstack.exceptions as osexc
    try:
        encryption = conn.block_storage.get_type_encryption(vtype.id)
    except osexc.NotFoundException:
        return False
    except osexc.SDKException as exc:
        raise OpenStackError("reading the encryption of type %s: %s" % (vtype.name, exc))
    return bool(getattr(encryption, "provider", None)
                or getattr(encryption, "encryption_id", None))


def project_volumes(conn: Any, project_id: str) -> List[Any]:
    return api("volumes of project %s" % project_id, lambda: list(
        conn.block_storage.volumes(all_projects=True, project_id=project_id)))
