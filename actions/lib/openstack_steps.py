"""The OpenStack steps of both procedures, through openstacksdk: describe and preflight a
volume, manage the copied image for the tenant, upload a boot volume to Glance, register an image
at the destination by its RBD location, create a volume from it, and roll back what the pack
created at the destination (never anything at the source).

Everything the pack creates carries the source's id (volume metadata or image property
``ceph_migrate_source_id``), which is how a re-run finds it instead of creating a duplicate.
"""
import re
import time
import unicodedata
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import names
from .capacity import require_room, written_by
from .clouds import OpenStackError
from .checklist import Checklist
from .errors import CephMigrateError, NotFound, RefusedError
from .migration_state import already_migrated
from .mirroring import check_mirror_pools
from .plan import VolumeMigrationPlan, pool_exists, preflight
from .rbd_image import (META_COPY_OF, META_REGISTERED, META_VERIFIED, RbdImage, facts, outcome,
                        where)
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings
from .waiting import Nudge, Reader, image_active_key

SOURCE_ID_KEY = "ceph_migrate_source_id"
BAD_VOLUME_STATES = ("error", "error_deleting", "error_managing", "error_restoring",
                     "error_extending", "deleting", "creating", "maintenance")
# image fields that describe the data or belong to Glance, never copied as properties
IMAGE_INTERNAL = {"id", "name", "status", "checksum", "os_hash_algo", "os_hash_value", "size",
                  "virtual_size", "owner", "created_at", "updated_at", "locations", "direct_url",
                  "file", "schema", "self", "stores", "visibility", "protected", "os_hidden",
                  "tags", "disk_format", "container_format", "min_disk", "min_ram",
                  "os_glance_failed_import", "os_glance_importing_to_stores", "owner_specified"}


def api(what: str, call: Callable[[], Any]) -> Any:
    """Run one openstacksdk call; its exceptions become the pack's, with the service's words."""
    import keystoneauth1.exceptions as ksexc
    import openstack.exceptions as osexc

    try:
        return call()
    except osexc.NotFoundException as exc:
        raise NotFound("%s: not found (%s)" % (what, _message(exc))) from None
    except (osexc.SDKException, ksexc.ClientException) as exc:
        raise OpenStackError("%s failed: %s" % (what, _message(exc))) from None


def _message(exc: Exception) -> str:
    return str(getattr(exc, "details", None) or exc).strip()


# -- describe and preflight -------------------------------------------------------------------
def describe_volume(settings: Settings, volume_id: str, conn: Any = None) -> Dict[str, Any]:
    """What a migration needs to know of a source volume, from Cinder and from Ceph."""
    vid = names.volume_id(volume_id)
    conn = conn or settings.cloud(SOURCE).connect()
    volume = api("source volume %s" % vid, lambda: conn.block_storage.get_volume(vid))
    vtype = _find_type(conn, volume.volume_type)
    project, domain = _project_and_domain(conn, volume.project_id)
    rbd = settings.image(SOURCE, settings.pools.mirrored_cinder, "volume-" + vid).find()
    rbd_facts = facts(rbd) if rbd else None
    return {
        "id": volume.id, "name": volume.name or "", "description": volume.description or "",
        "size_gib": volume.size, "status": volume.status, "bootable": bool(volume.is_bootable),
        "attached_to": [a.get("server_id") for a in volume.attachments or []],
        "volume_type": volume.volume_type, "encrypted": bool(volume.is_encrypted) or
        _type_encrypted(conn, vtype), "multiattach": bool(volume.is_multiattach),
        "metadata": dict(volume.metadata or {}),
        "image_metadata": dict(volume.volume_image_metadata or {}),
        "project_id": volume.project_id, "project_name": project, "project_domain": domain,
        "availability_zone": volume.availability_zone,
        "rbd_image": rbd_facts, "clone_of": rbd_facts["parent"] if rbd_facts else None,
    }


def preflight_volume(settings: Settings, volume: Dict[str, Any], procedure: str,
                     destination_project: Optional[str] = None,
                     allow_in_use: bool = False) -> Dict[str, Any]:
    """Every OpenStack check for one volume, read-only; ``ok`` false when one blocks."""
    checklist = Checklist()
    check = checklist.run
    warnings: List[str] = []
    check("volume state allows a migration", lambda: _state_ok(volume, allow_in_use))
    check("volume type is not encrypted", lambda: _not_encrypted(volume))
    if procedure == "data" and volume["bootable"]:
        warnings.append("the volume is bootable: migrate_boot_volume (through Glance) keeps it "
                        "bootable for new servers; the data procedure keeps the flag too")
    if volume.get("clone_of"):
        warnings.append("the RBD image is a clone of %s: mirror its parent or flatten it"
                        % volume["clone_of"])
    dest = settings.cloud(DESTINATION).connect()
    project = check("destination project exists",
                    lambda: project_for(dest, volume, destination_project))
    check("destination volume type exists", lambda: _dest_type(dest, volume["volume_type"]))
    check("destination accepts the volume's fields",
          lambda: "; ".join(destination_fields(volume)["notes"]) or "name, description and "
          "metadata as they are")
    migrated: List[Any] = []          # an earlier run's volume, seen by the name check
    if project:
        check("destination name is free",
              lambda: _name_free(settings, dest, project["id"], volume, migrated))
        check("destination quota has room", lambda: _quota_room(dest, project["id"], volume))
    if procedure == "data":
        check("destination Cinder pool is managed by a backend",
              lambda: manage_host(settings, dest))
    return checklist.report(warnings=warnings, destination_project=project,
                            migrated_volume=migrated[0] if migrated else None)


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


def _state_ok(volume: Dict[str, Any], allow_in_use: bool) -> str:
    if volume["status"] in BAD_VOLUME_STATES or volume["status"].startswith("error"):
        raise RefusedError("volume %s is %s" % (volume["id"], volume["status"]))
    if volume["status"] == "in-use" and not allow_in_use:
        servers = ", ".join(map(str, volume["attached_to"]))
        raise RefusedError("volume %s is in use (attached to %s): stop the server first or pass "
                           "allow_in_use" % (volume["id"], servers))
    if volume["status"] not in ("available", "in-use"):
        raise RefusedError("volume %s is %s, not available" % (volume["id"], volume["status"]))
    return volume["status"]


def _not_encrypted(volume: Dict[str, Any]) -> str:
    if volume["encrypted"]:
        raise RefusedError("volume %s has the encrypted volume type %r: Cinder refuses to manage "
                           "into an encrypted type, and its key is not migrated"
                           % (volume["id"], volume["volume_type"]))
    return "volume type %s" % volume["volume_type"]


def resolve_project(conn: Any, name_or_id: str, domain: Optional[str] = None) -> Dict[str, Any]:
    """The destination project named (or with the id) ``name_or_id``.

    A name must be unambiguous: projects of one name in several domains are refused (pass the
    id). ``domain`` (a domain name) restricts the search: a default taken from the source
    project's name must land in the domain of the same name, never in another tenant's."""
    named = api("projects named %s" % name_or_id,
                lambda: list(conn.identity.projects(name=name_or_id)))
    if not named:
        try:
            project = api("project %s" % name_or_id, lambda: conn.identity.get_project(name_or_id))
        except NotFound:
            raise NotFound("project %r does not exist at the destination" % name_or_id) from None
        return {"id": project.id, "name": project.name,
                "domain": _domain_name(conn, project.domain_id)}
    found = [(p, _domain_name(conn, p.domain_id)) for p in named]
    if domain is not None:
        matching = [(p, d) for p, d in found if d == domain]
        if not matching:
            raise NotFound("project %r exists at the destination only in domain %s, not in "
                           "domain %r (the source's): pass destination_project=<project id>"
                           % (name_or_id, ", ".join(sorted(str(d) for _, d in found)), domain))
        found = matching
    if len(found) > 1:
        raise RefusedError("%d projects are named %r at the destination (domains %s): pass "
                           "destination_project=<project id>" % (
                               len(found), name_or_id, ", ".join(sorted(str(d) for _, d in found))))
    project, domain_name = found[0]
    return {"id": project.id, "name": project.name, "domain": domain_name}


def project_for(conn: Any, volume: Dict[str, Any], given: Optional[str] = None) -> Dict[str, Any]:
    """The project given, else the one of the source project's name in the domain of the
    source project's domain name."""
    if given:
        return resolve_project(conn, given)
    return resolve_project(conn, volume["project_name"] or volume["project_id"],
                           domain=volume.get("project_domain"))


def _domain_name(conn: Any, domain_id: Optional[str]) -> Optional[str]:
    if not domain_id:
        return None
    return api("domain %s" % domain_id, lambda: conn.identity.get_domain(domain_id)).name


def _dest_type(conn: Any, type_name: Optional[str]) -> str:
    if not type_name:
        return "default volume type"
    if _find_type(conn, type_name) is None:
        raise NotFound("volume type %r does not exist at the destination: create it (same "
                       "name) first" % type_name)
    return type_name


def _name_free(settings: Settings, conn: Any, project_id: str, volume: Dict[str, Any],
               migrated: List[Any]) -> str:
    """Refuses a name collision; a volume an earlier run made is appended to ``migrated``."""
    for other in _project_volumes(conn, project_id):
        if (other.metadata or {}).get(SOURCE_ID_KEY) == volume["id"] and \
                made_by_pack(settings, other, volume["id"]):
            migrated.append(other)
            return "already migrated as %s (a re-run)" % other.id
        if volume["name"] and other.name == volume["name"]:
            raise RefusedError("the destination project already has a volume named %r (%s)"
                               % (volume["name"], other.id))
    return "no volume named %r" % volume["name"]


def _quota_room(conn: Any, project_id: str, volume: Dict[str, Any]) -> str:
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


def manage_host(settings: Settings, conn: Any) -> str:
    """The Cinder host@backend#pool that manages the destination Cinder pool."""
    if settings.destination_manage_host:
        return settings.destination_manage_host
    pools = api("backend pools", lambda: list(conn.block_storage.backend_pools()))
    wanted = settings.pools.destination_cinder
    for pool in pools:
        capabilities = getattr(pool, "capabilities", None) or {}
        if pool.name.endswith("#" + wanted) or capabilities.get("pool_name") == wanted:
            return pool.name
    raise NotFound("no Cinder backend pool at the destination serves pool %r (seen: %s); set "
                   "destination_manage_host" % (wanted, ", ".join(p.name for p in pools)))


# -- procedure 1: manage the copy ------------------------------------------------------------
def manage_copy(settings: Settings, volume_id: str, destination_project: Optional[str] = None,
                image: Optional[str] = None, timeout: float = 300) -> Dict[str, Any]:
    """Make the copied RBD image a volume of the tenant's project at the destination.

    Managed with the destination admin scoped to the tenant's project (by default the project
    of the source's name), so the tenant owns it at once. Name, description, metadata, type and
    bootable flag come from the source volume; the source's id goes into the metadata. Cinder
    renames the image to volume-<new id>.
    """
    volume = describe_volume(settings, volume_id)
    _not_encrypted(volume)
    image = names.image_name(image or "volume-" + volume["id"])
    admin = settings.cloud(DESTINATION).connect()
    project_id = project_for(admin, volume, destination_project)["id"]
    existing = find_migrated_volume(settings, admin, project_id, volume["id"])
    if existing is not None:
        if existing.status != "available" and existing.status != "in-use":
            raise RefusedError("an earlier manage of %s left volume %s in state %s: roll it back "
                               "first" % (volume["id"], existing.id, existing.status))
        return outcome(False, **managed_facts(settings, existing))
    target = settings.image(DESTINATION, settings.pools.destination_cinder, image)
    if not target.exists():
        raise NotFound("the copy %r does not exist: copy the replica first" % target)
    host = manage_host(settings, admin)
    tenant = settings.cloud(DESTINATION).connect(project_id=project_id)
    fields = destination_fields(volume)
    managed = api("cinder manage of %s" % target.spec, lambda: tenant.block_storage.manage_volume(
        host=host, ref={"source-name": image}, name=fields["name"],
        description=fields["description"], volume_type=volume["volume_type"],
        availability_zone=None, metadata=fields["metadata"], bootable=volume["bootable"]))
    managed = wait_for_volume(admin, managed.id, timeout, failures=["error", "error_managing"])
    _record_rename(settings, volume["id"], target.spec, managed.id)
    return outcome(True, **managed_facts(settings, managed))


def find_migrated_volume(settings: Settings, conn: Any, project_id: str, source_id: str) -> Any:
    """The destination volume an earlier run made of ``source_id``: tagged with it (a hint a
    tenant could write too) and proven by its RBD image (``made_by_pack``)."""
    for volume in _project_volumes(conn, project_id):
        if (volume.metadata or {}).get(SOURCE_ID_KEY) == source_id and \
                made_by_pack(settings, volume, source_id):
            return volume
    return None


def made_by_pack(settings: Settings, volume: Any, source_id: str) -> bool:
    """Whether a destination volume's RBD image is what the pack made for ``source_id``: the
    managed copy of its replica (``copy_of``, which cinder manage keeps) or a clone of a copy
    the pack made in the destination Glance pool (the boot procedure's volume). A tagged volume
    without an RBD image holds no data: taken as an earlier run's manage in flight or failed."""
    pools = settings.pools
    image = settings.image(DESTINATION, pools.destination_cinder, "volume-" + volume.id)
    info = image.find()
    if info is None:
        # no data to lose: a manage still renaming the copy, or one that failed
        return volume.status not in ("available", "in-use")
    replica = settings.image(DESTINATION, pools.mirrored_cinder, "volume-" + source_id)
    if (image.recorded(META_COPY_OF) or {}).get("source") == where(replica):
        return True
    # a clone carries its parent's metadata (librbd copies it): the parent decides
    parent = info.get("parent") or {}
    if parent.get("pool") != pools.destination_glance or not parent.get("image"):
        return False
    return bool(settings.image(DESTINATION, parent["pool"], parent["image"])
                .recorded(META_COPY_OF))


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
            "rbd_image": "%s/volume-%s" % (settings.pools.destination_cinder, volume.id)}


def _record_rename(settings: Settings, source_id: str, old_spec: str, new_id: str) -> None:
    """Cinder renamed the verified copy: keep the source's verification record pointing at it."""
    source = settings.image(SOURCE, settings.pools.mirrored_cinder, "volume-" + source_id)
    record = source.find() and source.recorded(META_VERIFIED)
    old = "%s:%s" % (settings.destination.name, old_spec)
    if record and record.get("destination") == old:
        record["destination"] = "%s:%s/volume-%s" % (settings.destination.name,
                                                     settings.pools.destination_cinder, new_id)
        record["managed_as"] = new_id
        source.record(META_VERIFIED, record)


# -- procedure 2: through Glance --------------------------------------------------------------
def upload_to_image(settings: Settings, volume_id: str, image_name: Optional[str] = None,
                    disk_format: str = "raw", allow_in_use: bool = False,
                    timeout: float = 540, read: Optional[Reader] = None) -> Dict[str, Any]:
    """Upload a source volume to a source Glance image and wait (bounded) until it is active.

    ``raw`` keeps the image usable for copy-on-write clones in Ceph. Idempotent: an image of
    that name made from this volume (property ceph_migrate_source_id) is reused. ``read``
    reads the datastore, where the notification sensor marks the image active (no wait then).
    """
    volume = describe_volume(settings, volume_id)
    image_name = image_name or default_image_name(volume)
    _state_ok(volume, allow_in_use)
    conn = settings.cloud(SOURCE).connect(project_id=volume["project_id"])
    existing = _find_source_image(conn, image_name, volume)
    changed = False
    if existing is None:
        response = api("upload of volume %s to image" % volume["id"],
                       lambda: conn.block_storage.upload_volume_to_image(
                           volume["id"], image_name, force=allow_in_use,
                           disk_format=disk_format, container_format="bare"))
        image_id = response.get("image_id") or (response.get("os-volume_upload_image") or
                                                {}).get("image_id")
        api("tagging image %s" % image_id, lambda: conn.image.update_image(
            image_id, **{SOURCE_ID_KEY: volume["id"]}))
        changed = True
    else:
        image_id = existing.id
    nudge = Nudge(read, image_active_key(image_id), tick=0.5)
    image = wait_for_image(conn, image_id, timeout, sleep=nudge.sleep)
    return outcome(changed, **image_facts(image))


def _find_source_image(conn: Any, name: str, volume: Dict[str, Any]) -> Any:
    """The upload of ``volume``: tagged with its id and owned by its project (the project sees
    public and shared images of others too, which may carry any tag)."""
    for image in api("images named %s" % name, lambda: list(conn.image.images(name=name))):
        if (image.properties or {}).get(SOURCE_ID_KEY) == volume["id"] and \
                image.owner == volume["project_id"]:
            return image
    return None


def find_source_image(settings: Settings, volume: Dict[str, Any],
                      image_name: Optional[str] = None) -> Any:
    """The image upload_to_image made of ``volume`` at the source, or None."""
    conn = settings.cloud(SOURCE).connect(project_id=volume["project_id"])
    return _find_source_image(conn, image_name or default_image_name(volume), volume)


def default_image_name(volume: Dict[str, Any]) -> str:
    return "%s_img" % (volume["name"] or volume["id"])


def wait_for_image(conn: Any, image_id: str, timeout: float,
                   sleep: Callable[[float], None] = time.sleep,
                   poll_interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        image = api("image %s" % image_id, lambda: conn.image.get_image(image_id))
        if image.status == "active":
            return image
        if image.status in ("killed", "deleted", "deactivated"):
            raise RefusedError("image %s is %s" % (image_id, image.status))
        if time.monotonic() >= deadline:
            raise RefusedError("image %s is still %s after %ss" % (image_id, image.status,
                                                                   timeout))
        sleep(poll_interval)


def image_facts(image: Any) -> Dict[str, Any]:
    return {"image_id": image.id, "name": image.name, "status": image.status,
            "size_bytes": image.size, "disk_format": image.disk_format,
            "container_format": image.container_format, "checksum": image.checksum,
            "os_hash_algo": image.hash_algo, "os_hash_value": image.hash_value,
            "owner": image.owner, "direct_url": image.direct_url,
            "rbd_location": parse_rbd_url(image.direct_url)}


def parse_rbd_url(url: Optional[str]) -> Optional[Dict[str, str]]:
    """``rbd://fsid/pool/image/snap`` into its parts (None for other stores)."""
    if not url or not url.startswith("rbd://"):
        return None
    parts = url[len("rbd://"):].split("/")
    if len(parts) != 4:
        return None
    return dict(zip(("fsid", "pool", "image", "snapshot"), parts))


def register_image(settings: Settings, source_image_id: str,
                   destination_project: Optional[str] = None, image: Optional[str] = None,
                   name: Optional[str] = None, snapshot: str = "snap",
                   verify_hash: bool = False) -> Dict[str, Any]:
    """Register the copied RBD image at the destination Glance by its location.

    rbd://<destination FSID>/<destination Glance pool>/<image>/<snap>, through the v2 location
    API (Glance v1's create-with-location is gone). The source image's formats and properties
    are kept; the tenant's project owns it. Glance re-hashes the data only if ``verify_hash``.
    """
    image = names.image_name(image or source_image_id)
    names.snapshot_name(snapshot)
    source_conn = settings.cloud(SOURCE).connect()
    source = api("source image %s" % source_image_id,
                 lambda: source_conn.image.get_image(source_image_id))
    owner, domain = _project_and_domain(source_conn, source.owner)
    project_id = project_for(settings.cloud(DESTINATION).connect(), {
        "project_name": owner, "project_id": source.owner, "project_domain": domain},
        destination_project)["id"]
    if source.disk_format != "raw":
        raise RefusedError("source image %s is %s: only raw images can live in Ceph and be "
                           "cloned copy-on-write" % (source.id, source.disk_format))
    target = settings.image(DESTINATION, settings.pools.destination_glance, image)
    snaps = [s["name"] for s in target.snapshots()] if target.exists() else None
    if snaps is None or snapshot not in snaps:
        raise NotFound("%s@%s does not exist: copy the replica and create the snapshot first"
                       % (target.spec, snapshot))
    registrar = settings.cloud(IMAGE_REGISTRATION).connect()
    existing = find_registered_image(registrar, source.id)
    if existing is not None and existing.status == "active":
        _record_registration(target, existing.id)
        return outcome(False, **image_facts(existing))
    url = "rbd://%s/%s/%s/%s" % (settings.fsid(DESTINATION), target.pool, image, snapshot)
    if existing is None:
        properties = {k: v for k, v in (source.properties or {}).items()
                      if k not in IMAGE_INTERNAL and not k.startswith("os_glance")}
        properties[SOURCE_ID_KEY] = source.id
        existing = api("creating the destination image", lambda: registrar.image.create_image(
            name=name or source.name, disk_format=source.disk_format,
            container_format=source.container_format, min_disk=source.min_disk or 0,
            min_ram=source.min_ram or 0, visibility="private", owner=project_id,
            allow_duplicates=True, **properties))
    validation = None
    if verify_hash and source.hash_value:
        validation = {"os_hash_algo": source.hash_algo, "os_hash_value": source.hash_value}
    api("registering %s" % url, lambda: registrar.image.add_image_location(
        existing.id, url, validation_data=validation))
    registered = wait_for_image(registrar, existing.id, 120)
    _record_registration(target, registered.id)
    return outcome(True, location=url, **image_facts(registered))


def registered_image_exists(settings: Settings, image_id: str) -> bool:
    """Whether the destination Glance still has image ``image_id`` (deleted ones count as gone)."""
    conn = settings.cloud(IMAGE_REGISTRATION).connect()
    try:
        image = api("destination image %s" % image_id, lambda: conn.image.get_image(image_id))
    except NotFound:
        return False
    return image.status not in ("deleted", "pending_delete")


def _record_registration(copy: RbdImage, image_id: str) -> None:
    """The copy is a Glance image's data now: remove_copy must leave it to Glance."""
    if (copy.recorded(META_REGISTERED) or {}).get("image_id") != image_id:
        copy.record(META_REGISTERED, {"image_id": image_id})


def find_registered_image(conn: Any, source_image_id: str) -> Any:
    for image in api("destination images", lambda: list(conn.image.images())):
        if (image.properties or {}).get(SOURCE_ID_KEY) == source_image_id:
            return image
    return None


def create_volume_from_image(settings: Settings, image_id: str, destination_project: str,
                             name: str, size_gib: int, volume_type: Optional[str] = None,
                             source_id: Optional[str] = None,
                             timeout: float = 540) -> Dict[str, Any]:
    """A volume of the tenant from the registered image (Cinder clones it copy-on-write when
    the image is raw and in the same Ceph cluster)."""
    admin = settings.cloud(DESTINATION).connect()
    project_id = resolve_project(admin, destination_project)["id"]
    marker = source_id or image_id
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


# -- rollback ---------------------------------------------------------------------------------
def rollback_destination(settings: Settings, source_id: str, destination_project: str,
                         delete_data: bool = False, source_image_id: Optional[str] = None,
                         timeout: float = 120) -> Dict[str, Any]:
    """Undo what the pack created at the destination for ``source_id``; never the source.

    A managed volume is unmanaged (its RBD image stays) unless ``delete_data`` (then deleted,
    and waited for: a clone must be gone before its image can go). Images registered from
    ``source_id`` or ``source_image_id`` are deleted from Glance (the copy in the Glance pool
    goes with them). Tags are hints: a volume goes only when its RBD image proves the pack made
    it, an image only when the copy it stands on records its registration.
    """
    admin = settings.cloud(DESTINATION).connect()
    project_id = resolve_project(admin, destination_project)["id"]
    done: List[str] = []
    kept: List[str] = []
    volume = find_migrated_volume(settings, admin, project_id, source_id)
    if volume is not None:
        if volume.status == "in-use":
            raise RefusedError("volume %s is attached at the destination: detach it first"
                               % volume.id)
        if delete_data:
            api("deleting %s" % volume.id, lambda: admin.block_storage.delete_volume(volume.id))
            api("waiting for %s to go" % volume.id, lambda: admin.block_storage.wait_for_delete(
                volume, interval=1, wait=timeout))
            done.append("deleted volume %s" % volume.id)
        else:
            api("unmanaging %s" % volume.id,
                lambda: admin.block_storage.unmanage_volume(volume.id))
            done.append("unmanaged volume %s (RBD image volume-%s kept)" % (volume.id, volume.id))
    registrar = settings.cloud(IMAGE_REGISTRATION).connect()
    for marker in filter(None, {source_id, source_image_id}):
        image = find_registered_image(registrar, marker)
        if image is None:
            continue
        copy = settings.image(DESTINATION, settings.pools.destination_glance, marker)
        if (copy.find() and copy.recorded(META_REGISTERED) or {}).get("image_id") != image.id:
            kept.append("image %s: tagged with %s, but no copy of the pack records it"
                        % (image.id, marker))
            continue
        api("deleting image %s" % image.id, lambda: registrar.image.delete_image(image.id))
        done.append("deleted image %s" % image.id)
    return outcome(bool(done), undone=done, kept=kept)


def delete_uploaded_image(settings: Settings, volume_id: str,
                          image_name: Optional[str] = None) -> Dict[str, Any]:
    """Delete the image upload_to_image made of a source volume (found by its tag, so nothing
    else can be hit). Refused while its RBD image is still mirrored."""
    volume = describe_volume(settings, volume_id)
    image = find_source_image(settings, volume, image_name)
    if image is None:
        return outcome(False, deleted=None)
    rbd = settings.image(SOURCE, settings.pools.mirrored_glance, image.id)
    info = rbd.find()
    if info is not None and facts(info)["mirroring"]["state"] != "disabled":
        raise RefusedError("image %s is still mirrored: disable mirroring first" % image.id)
    conn = settings.cloud(SOURCE).connect(project_id=volume["project_id"])
    api("deleting image %s" % image.id, lambda: conn.image.delete_image(image.id))
    return outcome(True, deleted=image.id)


# -- helpers ----------------------------------------------------------------------------------
def _find_type(conn: Any, name: Optional[str]) -> Any:
    if not name:
        return None
    return api("volume type %s" % name,
               lambda: conn.block_storage.find_type(name, ignore_missing=True))


def _type_encrypted(conn: Any, vtype: Any) -> bool:
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


def _project_and_domain(conn: Any, project_id: str) -> Tuple[Optional[str], Optional[str]]:
    try:
        project = conn.identity.get_project(project_id)
        return project.name, conn.identity.get_domain(project.domain_id).name
    except Exception:   # a reader without identity rights still gets the rest
        return None, None


def _project_volumes(conn: Any, project_id: str) -> List[Any]:
    return api("volumes of project %s" % project_id, lambda: list(
        conn.block_storage.volumes(all_projects=True, project_id=project_id)))


# -- whole-procedure preflights ---------------------------------------------------------------
def plan_data_volume(settings: Settings, volume_id: str, mode: Optional[str] = None,
                     destination_image: Optional[str] = None,
                     destination_project: Optional[str] = None,
                     allow_in_use: bool = False) -> Dict[str, Any]:
    """Procedure 1's dry run: the Ceph plan and checks, plus Cinder's when clouds are set."""
    report = preflight(settings, VolumeMigrationPlan.build(settings, volume_id, mode,
                                                           destination_image))
    return _with_openstack(settings, report, volume_id, "data", destination_project,
                           allow_in_use)


def plan_boot_volume(settings: Settings, volume_id: str,
                     destination_project: Optional[str] = None,
                     allow_in_use: bool = False) -> Dict[str, Any]:
    """Procedure 2's dry run: Cinder and Glance at both ends, the Glance pools in Ceph."""
    pools = settings.pools
    probe = "ceph_migrate-preflight"           # a name only used to address the pools
    checklist = Checklist()
    checklist.run("Glance pools are mirrored to the destination", lambda: check_mirror_pools(
        settings.image(SOURCE, pools.mirrored_glance, probe),
        settings.image(DESTINATION, pools.mirrored_glance, probe)))
    if checklist.run("destination Glance pool exists",
                     lambda: pool_exists(settings.rbd(DESTINATION), pools.destination_glance)):
        checklist.run("both clusters have room", lambda: _boot_room(settings, volume_id))
    stages = ["preflight", "gate: Ceph admin approves mirroring",
              "gate: tenant admin stops the server",
              "upload the volume to a raw image at the source (Glance)",
              "mirror the image (%s, pool mode: journaling)" % pools.mirrored_glance,
              "copy the replica into %s, snapshot snap, protect" % pools.destination_glance,
              "verify content (sha256)",
              "register the image at the destination by its rbd:// location",
              "create the boot volume at the destination (copy-on-write clone)",
              "gate: Ceph admin approves cleanup", "cleanup: mirroring off, source kept"]
    report = checklist.report(warnings=[], plan={
        "volume_id": names.volume_id(volume_id), "procedure": "boot",
        "mirrored_pool": pools.mirrored_glance, "destination_pool": pools.destination_glance,
        "stages": stages})
    return _with_openstack(settings, report, volume_id, "boot", destination_project,
                           allow_in_use)


def _boot_room(settings: Settings, volume_id: str) -> str:
    """The upload writes the whole volume into the source Glance pool (thick); the replica
    and the copy in the destination's Glance pools each as much again."""
    pools = settings.pools
    volume = settings.image(SOURCE, pools.mirrored_cinder,
                            "volume-" + names.volume_id(volume_id))
    size = written_by(volume, thick=True)
    return "; ".join((
        require_room(settings.ceph(SOURCE), pools.mirrored_glance, [pools.mirrored_glance],
                     size, settings.capacity_reserve),
        require_room(settings.ceph(DESTINATION), "%s and %s" % (
            pools.mirrored_glance, pools.destination_glance),
            [pools.mirrored_glance, pools.destination_glance], 2 * size,
            settings.capacity_reserve)))


def _with_openstack(settings: Settings, report: Dict[str, Any], volume_id: str, procedure: str,
                    destination_project: Optional[str], allow_in_use: bool) -> Dict[str, Any]:
    if not settings.clouds:
        report["warnings"].append("OpenStack checks skipped: source_cloud/destination_cloud "
                                  "are not configured")
        return report
    try:
        volume = describe_volume(settings, volume_id)
    except CephMigrateError as exc:
        report["checks"].append({"check": "source volume exists in Cinder", "ok": False,
                                 "detail": str(exc)})
        report["ok"] = False
        return report
    cloud = preflight_volume(settings, volume, procedure, destination_project, allow_in_use)
    report["checks"].extend(cloud["checks"])
    report["warnings"].extend(cloud["warnings"])
    report["ok"] = report["ok"] and cloud["ok"]
    report["volume"] = volume
    report["destination_project"] = cloud["destination_project"]
    report["already_migrated"] = already_migrated(settings, volume, cloud["migrated_volume"],
                                                  procedure)
    return report
