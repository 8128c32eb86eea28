"""A project's quotas in Nova, Neutron and Cinder: one concept over three APIs, exported as one
``tenant.Resource`` per service (source ids ``compute``, ``network``, ``volume``) and brought to
the destination project's quotas, which exist by construction (adopted, then set to the
source's limits). A rollback leaves quotas as they are."""
from typing import Any, Callable, Dict, List, Mapping, Tuple

from .clouds import api
from .tenant import Resource, Store

# service -> (the limits carried, how to read a project's, how to set them)
LIMITS: Dict[str, Tuple[str, ...]] = {
    "compute": ("cores", "instances", "ram", "key_pairs", "metadata_items", "server_groups",
                "server_group_members"),
    "network": ("networks", "subnets", "ports", "routers", "floating_ips", "security_groups",
                "security_group_rules"),
    "volume": ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes",
               "per_volume_gigabytes", "groups"),
}


def _reader(conn: Any, service: str, project_id: str) -> Callable[[], Any]:
    if service == "compute":
        return lambda: conn.compute.get_quota_set(project_id)
    if service == "network":
        return lambda: conn.network.get_quota(project_id)
    return lambda: conn.block_storage.get_quota_set(project_id)


def limits(quota: Any, service: str) -> Dict[str, Any]:
    """The limits carried, and which service's they are (the store is chosen by it)."""
    found: Dict[str, Any] = {k: getattr(quota, k, None) for k in LIMITS[service]
                             if getattr(quota, k, None) is not None}
    found["service"] = service
    return found


def export(conn: Any, project_id: str) -> List[Resource]:
    return [Resource("quota", service, limits(api("%s quotas of %s" % (service, project_id),
                                                  _reader(conn, service, project_id)),
                                              service))
            for service in LIMITS]


def usage(conn: Any, project_id: str) -> Dict[str, Dict[str, int]]:
    """What the project uses of each carried limit, per service (the quota APIs' own counts)."""
    def used(service: str) -> Dict[str, int]:
        if service == "network":
            details = conn.network.get_quota(project_id, details=True)
            return {k: int((getattr(details, k, None) or {}).get("used") or 0)
                    for k in LIMITS[service]}
        quota = conn.compute.get_quota_set(project_id, usage=True) if service == "compute" \
            else conn.block_storage.get_quota_set(project_id, usage=True)
        return {k: int((quota.usage or {}).get(k) or 0) for k in LIMITS[service]}
    return {service: api("%s quota usage of %s" % (service, project_id),
                         lambda: used(service)) for service in LIMITS}


def shortfalls(used: Mapping[str, Mapping[str, int]], allowed: Mapping[str, Mapping[str, Any]]
               ) -> List[Dict[str, Any]]:
    """Each limit the destination would set (or has) below what the tenant uses (-1: none)."""
    found = []
    for service, counts in sorted(used.items()):
        for limit, count in sorted(counts.items()):
            cap = (allowed.get(service) or {}).get(limit)
            if cap is not None and int(cap) >= 0 and count > int(cap):
                found.append({"service": service, "limit": limit, "used": count,
                              "allowed": int(cap)})
    return found


def quota_store(conn: Any, project_id: str, service: str) -> Store:
    """The destination project's quotas of SERVICE: never created, never deleted."""
    read = _reader(conn, service, project_id)

    def update(quota: Any, attrs: Dict[str, Any]) -> Any:
        if service == "compute":
            return conn.compute.update_quota_set(project_id, **attrs)
        if service == "network":
            return conn.network.update_quota(project_id, **attrs)
        return conn.block_storage.update_quota_set(project_id, **attrs)

    def refuse(wanted: Dict[str, Any], tag: str) -> Any:
        raise AssertionError("a project's quotas exist with it")   # builtin always finds them
    return Store(
        get=lambda ident: read(), tagged=lambda tag: [], named=lambda name: [],
        actual=lambda quota: limits(quota, service), create=refuse, update=update,
        updatable=LIMITS[service], ident=lambda quota: project_id,
        builtin=lambda wanted: read())


def untag(conn: Any, kind: str, destination_id: str, source_id: str,
          dry_run: bool = False) -> str:
    return "kept: quotas stay as they were set"


remove = untag       # quotas are never made, so never removed
