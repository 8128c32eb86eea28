"""Glance: the boot procedure's image at the source (a volume uploaded to it) and at the
destination (the verified copy registered by its RBD location), each found again on a re-run
by the source's id it carries, and deleted again by the rollback."""
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import names
from .cinder import describe_volume, state_ok, volume_state
from .clouds import OpenStackError, api
from .errors import NotFound, RefusedError
from .keystone import project_and_domain, project_for
from .migration import Migration
from .names import SOURCE_ID_KEY
from .rbd_image import META_REGISTERED, RbdImage, facts, outcome
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings
from .tenant import Resource, Store
from .waiting import Nudge, Reader, image_active_key

# image fields that describe the data or belong to Glance, never copied as properties
IMAGE_INTERNAL = {"id", "name", "status", "checksum", "os_hash_algo", "os_hash_value", "size",
                  "virtual_size", "owner", "created_at", "updated_at", "locations", "direct_url",
                  "file", "schema", "self", "stores", "visibility", "protected", "os_hidden",
                  "tags", "disk_format", "container_format", "min_disk", "min_ram",
                  "os_glance_failed_import", "os_glance_importing_to_stores", "owner_specified"}


# -- at the source: the upload ---------------------------------------------------------------
def upload_volume_to_image(settings: Settings, volume_id: str, image_name: Optional[str] = None,
                           disk_format: str = "raw", allow_in_use: bool = False,
                           timeout: float = 540, read: Optional[Reader] = None,
                           migration: Optional[Migration] = None) -> Dict[str, Any]:
    """Upload a source volume to a source Glance image and wait (bounded) until it is active.

    ``raw`` keeps the image usable for copy-on-write clones in Ceph. Idempotent: an image of
    that name made from this volume (property ceph_migrate_source_id) is reused. ``read``
    reads the datastore, where the notification sensor marks the image active (no wait then).
    With the plan's ``migration`` only the volume's state is read again (the server may have
    stopped since the plan), not the whole description.
    """
    if migration and migration.volume:
        volume = dict(migration.volume, **volume_state(settings, migration.volume_id))
    else:
        volume = describe_volume(settings, volume_id)
    image_name = image_name or default_image_name(volume)
    state_ok(volume, allow_in_use)
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
        if not image_id:
            raise OpenStackError("Cinder accepted the upload of volume %s but named no "
                                 "image: %r" % (volume["id"], response))
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
    """The image upload_volume_to_image made of ``volume`` at the source, or None."""
    conn = settings.cloud(SOURCE).connect(project_id=volume["project_id"])
    return _find_source_image(conn, image_name or default_image_name(volume), volume)


def default_image_name(volume: Dict[str, Any]) -> str:
    return "%s_img" % (volume["name"] or volume["id"])


def delete_uploaded_image(settings: Settings, volume_id: str,
                          image_name: Optional[str] = None) -> Dict[str, Any]:
    """Delete the image upload_volume_to_image made of a source volume (found by its tag, so
    nothing else can be hit). Refused while its RBD image is still mirrored."""
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


# -- at the destination: the registration ----------------------------------------------------
def register_image(settings: Settings, source_image_id: str,
                   destination_project: Optional[str] = None, image: Optional[str] = None,
                   name: Optional[str] = None, snapshot: str = "snap",
                   verify_hash: bool = False,
                   migration: Optional[Migration] = None) -> Dict[str, Any]:
    """Register the copied RBD image at the destination Glance by its location.

    rbd://<destination FSID>/<destination Glance pool>/<image>/<snap>, through the v2 location
    API (Glance v1's create-with-location is gone). The source image's formats and properties
    are kept; the tenant's project owns it (the plan's, when its ``migration`` is given: the
    image must then be the upload of that migration's volume). Glance re-hashes the data only
    if ``verify_hash``.
    """
    image = names.image_name(image or source_image_id)
    names.snapshot_name(snapshot)
    source_conn = settings.cloud(SOURCE).connect()
    source = api("source image %s" % source_image_id,
                 lambda: source_conn.image.get_image(source_image_id))
    if migration and (source.properties or {}).get(SOURCE_ID_KEY) != migration.volume_id:
        raise RefusedError("image %s is not the upload of volume %s (the migration's): pass the "
                           "image its upload_volume_to_image made" % (source.id,
                                                                      migration.volume_id))
    project = migration and migration.project(destination_project)
    if not project:
        owner, domain = project_and_domain(source_conn, source.owner)
        project = project_for(settings.cloud(DESTINATION).connect(), {
            "project_name": owner, "project_id": source.owner, "project_domain": domain},
            destination_project)
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
            min_ram=source.min_ram or 0, visibility="private", owner=project["id"],
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


# -- a tenant's images -----------------------------------------------------------------------
# What is carried of an image: its data (by Ceph, image_transfer) and these; the pack's mark is
# the property ceph_migrate_source_id, as on the boot procedure's registration.
IMAGE_PARAMS = ("name", "disk_format", "container_format", "min_disk", "min_ram", "visibility",
                "protected", "tags", "properties", "os_hash_algo", "os_hash_value", "members")
IMAGE_UPDATABLE = ("name", "min_disk", "min_ram", "visibility", "protected", "tags",
                   "properties", "members")


def image_params(conn: Any, image: Any) -> Dict[str, Any]:
    """What is carried of IMAGE; its properties read from Glance's own JSON (openstacksdk
    moves the ones it knows, os_distro, hw_*..., out of ``properties``)."""
    raw = conn.image.get("/images/%s" % image.id).json()
    properties = {k: v for k, v in sorted(raw.items())
                  if k not in IMAGE_INTERNAL and not k.startswith("os_glance")
                  and k != SOURCE_ID_KEY}
    members = sorted(m.member_id for m in conn.image.members(image)) \
        if image.visibility == "shared" else []
    return {"name": image.name, "disk_format": image.disk_format,
            "container_format": image.container_format, "min_disk": image.min_disk or 0,
            "min_ram": image.min_ram or 0, "visibility": image.visibility,
            "protected": bool(image.is_protected), "tags": sorted(image.tags or []),
            "properties": properties, "os_hash_algo": image.hash_algo,
            "os_hash_value": image.hash_value, "members": members}


def export(conn: Any, project_id: str) -> List[Resource]:
    """The project's own active images (those of others it may use stay theirs), each with
    where its data is (facts.location: an rbd:// location's parts, or None elsewhere)."""
    found = []
    for image in api("images of %s" % project_id,
                     lambda: list(conn.image.images(owner=project_id))):
        if image.status != "active" or image.owner != project_id:
            continue
        params = api("image %s" % image.id, lambda: image_params(conn, image))
        found.append(Resource("image", image.id, params,
                              {"size": image.size, "checksum": image.checksum,
                               "location": parse_rbd_url(image.direct_url)},
                              refs={}))
    return found


def translated_members(wanted: Dict[str, Any], projects: Mapping[str, str]) -> Dict[str, Any]:
    return dict(wanted, members=sorted(projects.get(p, p) for p in wanted.get("members") or []))


def image_store(conn: Any, project_id: str, carry: Callable[[str], str]) -> Store:
    """The destination project's images. CARRY(source image id) puts the data in the
    destination Glance pool (by Ceph) and returns its rbd:// location; the image is registered
    on it with the source's hash (Glance trusts it: no bytes read), then given its visibility
    and members."""
    image = conn.image

    def find(ident: str) -> Optional[Any]:
        return _live_image(conn, ident)

    def create(wanted: Dict[str, Any], mark: str) -> Any:
        source_id = mark.split("=", 1)[1]
        url = carry(source_id)
        made = image.create_image(
            name=wanted["name"], disk_format=wanted["disk_format"],
            container_format=wanted["container_format"], min_disk=wanted["min_disk"],
            min_ram=wanted["min_ram"], visibility="private", owner=project_id,
            tags=wanted["tags"], allow_duplicates=True,
            **dict(wanted["properties"], **{SOURCE_ID_KEY: source_id}))
        validation = {"os_hash_algo": wanted["os_hash_algo"],
                      "os_hash_value": wanted["os_hash_value"]} \
            if wanted.get("os_hash_value") else None
        image.add_image_location(made.id, url, validation_data=validation)
        made = wait_for_image(conn, made.id, 120)
        return update(made, {k: wanted[k] for k in ("visibility", "protected", "members")})

    def update(found: Any, attrs: Dict[str, Any]) -> Any:
        members = attrs.pop("members", None)
        simple = {k: v for k, v in attrs.items() if k not in ("properties", "protected")}
        if "protected" in attrs:
            simple["is_protected"] = attrs["protected"]
        simple.update(attrs.get("properties") or {})
        if simple:
            found = image.update_image(found, **simple)
        if members:
            have = {m.member_id for m in image.members(found)}
            for member in members:
                if member not in have:             # added, never taken away
                    image.add_member(found, member_id=member)
        return found

    return Store(
        get=find,
        tagged=lambda mark: [i for i in image.images(owner=project_id)
                             if (i.properties or {}).get(SOURCE_ID_KEY) == mark.split("=", 1)[1]],
        named=lambda name: list(image.images(owner=project_id, name=name)),
        actual=lambda found: image_params(conn, found), create=create, update=update,
        updatable=IMAGE_UPDATABLE, failed=lambda found: found.status != "active",
        delete=lambda found: _delete(conn, found))


def _delete(conn: Any, found: Any) -> None:
    """A protected image is unprotected first (the pack's own, proven by the caller)."""
    if found.is_protected:
        conn.image.update_image(found, is_protected=False)
    conn.image.delete_image(found, ignore_missing=True)


def _live_image(conn: Any, image_id: str) -> Optional[Any]:
    try:
        found = api("image %s" % image_id, lambda: conn.image.get_image(image_id))
    except NotFound:
        return None
    return None if found.status in ("deleted", "pending_delete") else found


def remove(conn: Any, kind: str, destination_id: str, source_id: str,
           dry_run: bool = False) -> str:
    """Delete an image the pack made (its property names SOURCE_ID); Glance removes its data."""
    found = _live_image(conn, destination_id)
    if found is None:
        return "gone"
    if (found.properties or {}).get(SOURCE_ID_KEY) != source_id:
        return "kept: it does not carry the property %s=%s" % (SOURCE_ID_KEY, source_id)
    if not dry_run:
        _delete(conn, found)
    return "would be removed" if dry_run else "removed"


def untag(conn: Any, kind: str, destination_id: str, source_id: str,
          dry_run: bool = False) -> str:
    """An adopted image loses the pack's property."""
    found = None if dry_run else _live_image(conn, destination_id)
    if found is not None:
        if (found.properties or {}).get(SOURCE_ID_KEY) == source_id:
            conn.image.patch("/images/%s" % destination_id,
                             json=[{"op": "remove", "path": "/%s" % SOURCE_ID_KEY}],
                             headers={"Content-Type":
                                      "application/openstack-images-v2.1-json-patch"})
    return "kept: adopted, not made by the pack"
