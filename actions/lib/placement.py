"""Placement: how much compute the destination can still give (free VCPU, MEMORY_MB and
DISK_GB over its resource providers), for the plan to compare with what a tenant's servers
use. Read-only; openstacksdk has no usages call, so Placement's own JSON is read."""
from typing import Any, Dict

from .clouds import api

CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")


def free(conn: Any) -> Dict[str, int]:
    """Per resource class, what is left: (total - reserved) x allocation ratio - used."""
    placement = conn.placement

    def read() -> Dict[str, int]:
        left = {c: 0 for c in CLASSES}
        for provider in placement.get("/resource_providers").json()["resource_providers"]:
            uuid = provider["uuid"]
            inventories = placement.get("/resource_providers/%s/inventories"
                                        % uuid).json()["inventories"]
            usages = placement.get("/resource_providers/%s/usages" % uuid).json()["usages"]
            for cls in CLASSES:
                inv = inventories.get(cls)
                if inv:
                    room = (inv["total"] - inv.get("reserved", 0)) * inv.get(
                        "allocation_ratio", 1.0) - usages.get(cls, 0)
                    left[cls] += max(0, int(room))
        return left
    return api("Placement resource providers", read)
