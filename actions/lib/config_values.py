"""Strict readings of single config values.

StackStorm validates a config file against config.schema.yaml, but values it renders from the
datastore (``{{ st2kv.system.x }}``) arrive as strings after that, and the local runner reads
plain YAML: ``bool("false")`` is True (TLS verification off), ``list("ceph-admin")`` is ten
one-letter approvers, and ``float("-1") or 10`` is a poll that spins. Each value is read here
exactly once, or refused with the key's name.

``DEFAULTS`` is the one table of what an absent value means; config.schema.yaml declares the
same defaults (a test holds them equal) for StackStorm to fill in.
"""
from typing import Any, Dict, List, Optional

from .errors import ConfigError

_COPY_FEATURES = ["layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"]
# by the key's place in the config; sections of one shape (every <role>_cloud, every
# <role>_notifications, every approvals gate) share one entry
DEFAULTS: Dict[str, Any] = {
    "source_ceph.cluster": "ceph",
    "source_ceph.client_id": "admin",
    "destination_ceph.cluster": "cephpa1",
    "destination_ceph.client_id": "admin",
    "pools.mirrored_cinder_pool": "oscinder",
    "pools.mirrored_glance_pool": "osglance",
    "pools.mirrored_nova_pool": "vms",
    "pools.destination_cinder_pool": "cinder-ceph-pa1-cl1",
    "pools.destination_glance_pool": "glance-ct1-cl1",
    "mirror_mode": "snapshot",
    "copy.image_features": _COPY_FEATURES,
    "copy.timeout": 7200,
    "copy.method": "export_diff",
    "copy.placement": "copy",
    "copy.stall_timeout": 900,
    "rbd_timeout": 120,
    "sync.poll_interval": 2,
    "sync.wait_timeout": 540,
    "capacity.reserve_gib": 0,
    "approvals.gate.users": [],
    "approvals.gate.roles": [],
    "approvals.gate.chat_users": [],
    "approvals.self_approval": False,
    "cloud.user_domain_name": "Default",
    "cloud.project_domain_name": "Default",
    "cloud.interface": "public",
    "cloud.insecure": False,
    "cloud.timeout": 60,
    "destination_glance_store": "ceph",
    "sensors.mirror_poll_interval": 10,
    "sensors.stall_seconds": 120,
    "sensors.fallback_poll_interval": 15,
    "sensors.max_backoff": 30,
    "notifications.port": 5672,
    "notifications.vhost": "/",
    "notifications.username": "guest",
    "notifications.password": "guest",
    "notifications.ssl": False,
    "notifications.exchanges": ["glance", "openstack"],
    "notifications.topic": "notifications",
}


def default(key: str) -> Any:
    """The default of ``key`` (a copy: a list default must not be shared)."""
    value = DEFAULTS[key]
    return list(value) if isinstance(value, list) else value


def flag(value: Any, key: str, default: bool = False) -> bool:
    """true/false, also as the strings a datastore value renders to."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError("%s must be true or false, got %r" % (key, value))


def number(value: Any, key: str, default: float, minimum: float,
           maximum: Optional[float] = None) -> float:
    """A number within [minimum, maximum]; absent (or empty) means the default."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ConfigError("%s must be a number, got %r" % (key, value))
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError("%s must be a number, got %r" % (key, value)) from None
    if result < minimum or (maximum is not None and result > maximum):
        bounds = ("between %s and %s" % (minimum, maximum) if maximum is not None
                  else "at least %s" % minimum)
        raise ConfigError("%s must be %s, got %r" % (key, bounds, value))
    return result


def integer(value: Any, key: str, default: int, minimum: int,
            maximum: Optional[int] = None) -> int:
    """A whole number within [minimum, maximum]; absent (or empty) means the default."""
    result = number(value, key, default, minimum, maximum)
    if result != int(result):
        raise ConfigError("%s must be a whole number, got %r" % (key, value))
    return int(result)


def names(value: Any, key: str) -> List[str]:
    """A list of non-empty names (StackStorm users, roles, exchanges); a bare string is refused
    rather than read letter by letter."""
    if value is None:
        return []
    if isinstance(value, str):
        raise ConfigError("%s must be a list, got the string %r (write [%s])"
                          % (key, value, value))
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(item, str) and item.strip() for item in value):
        raise ConfigError("%s must be a list of non-empty names, got %r" % (key, value))
    return [str(item) for item in value]
