"""How far an earlier run of a migration got, read from what it left behind (the destination
volume tagged with the source's id, the records on the source image), so that a re-run of a
completed migration goes straight to what is left (the cleanup) instead of copying again."""
from typing import Any, Dict, Optional

from .rbd_image import META_ADDED_FEATURES, RbdImage, mirroring
from .settings import SOURCE, Settings

USABLE = ("available", "in-use")


def cleanup_pending(image: RbdImage) -> bool:
    """The source image is still mirrored or still carries features the pack added."""
    info = image.find()
    if info is None:
        return False
    return (mirroring(info)["state"] != "disabled"
            or bool(image.recorded(META_ADDED_FEATURES)))


def already_migrated(settings: Settings, volume: Dict[str, Any], existing: Any,
                     procedure: str) -> Optional[Dict[str, Any]]:
    """None, or what is left of an earlier run that made ``existing`` (the destination volume
    the preflight found carrying ``volume``'s id).

    ``usable`` false means that volume is in a failed state (roll it back first); for the boot
    procedure ``image_id`` is the source Glance image the earlier run uploaded.
    """
    from .openstack_steps import find_source_image, managed_facts

    if existing is None:
        return None
    pools = settings.pools
    image_id = None
    if procedure == "boot":
        uploaded = find_source_image(settings, volume)
        image_id = uploaded.id if uploaded is not None else None
        source = settings.image(SOURCE, pools.mirrored_glance, image_id) if image_id else None
    else:
        source = settings.image(SOURCE, pools.mirrored_cinder, "volume-" + volume["id"])
    return {"volume": managed_facts(settings, existing), "usable": existing.status in USABLE,
            "image_id": image_id,
            "cleanup_pending": bool(source is not None and cleanup_pending(source))}
