"""The pack configuration, parsed and validated once into typed settings."""
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from . import names
from .ceph_cli import CephCli, CephCluster
from .config_values import flag, integer, names as name_list, number
from .clouds import CloudSettings
from .errors import CephMigrateError, ConfigError
from .rbd_image import RbdImage

SOURCE = "source"
DESTINATION = "destination"
SIDES = (SOURCE, DESTINATION)
IMAGE_REGISTRATION = "image_registration"
CLOUD_ROLES = (SOURCE, DESTINATION, IMAGE_REGISTRATION)

DEFAULT_COPY_FEATURES = ("layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten")
# Each bounded step must give up on its own before StackStorm kills its action (copy_replica and
# verify_copy: 7500 s, wait_for_sync: 600 s), so it returns what workflows retry on.
MAX_COPY_TIMEOUT = 7200
MAX_WAIT_TIMEOUT = 570


@dataclass(frozen=True)
class Pools:
    mirrored_cinder: str
    mirrored_glance: str
    destination_cinder: str
    destination_glance: str


@dataclass(frozen=True)
class SensorSettings:
    mirror_poll_interval: float = 10.0
    stall_seconds: float = 120.0
    fallback_poll_interval: float = 15.0
    max_backoff: float = 30.0

    @classmethod
    def from_config(cls, section: Any) -> "SensorSettings":
        section = section or {}

        def seconds(key: str, default: float, maximum: float = 3600) -> float:
            return number(section.get(key), "sensors." + key, default, 1, maximum)

        return cls(mirror_poll_interval=seconds("mirror_poll_interval", 10),
                   stall_seconds=seconds("stall_seconds", 120, 86400),
                   fallback_poll_interval=seconds("fallback_poll_interval", 15),
                   max_backoff=seconds("max_backoff", 30))


@dataclass(frozen=True)
class Settings:
    source: CephCluster
    destination: CephCluster
    pools: Pools
    mirror_mode: str = "snapshot"
    copy_features: Tuple[str, ...] = DEFAULT_COPY_FEATURES
    copy_timeout: int = 7200
    copy_stall: int = 900              # seconds a copy or checksum may show no progress
    rbd_timeout: int = 120
    poll_interval: float = 2.0
    wait_timeout: int = 540
    clouds: Mapping[str, Any] = field(default_factory=dict, repr=False)
    destination_manage_host: Optional[str] = None
    destination_glance_store: str = "ceph"
    sensors: SensorSettings = SensorSettings()
    notifications: Mapping[str, Any] = field(default_factory=dict, repr=False)
    capacity_reserve: int = 0          # bytes kept free below a cluster's nearfull ratio

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        """Build from the pack config (a dict as StackStorm passes it); ConfigError if unusable."""
        if not isinstance(config, Mapping):
            raise ConfigError("the ceph_migrate pack has no configuration: copy "
                              "ceph_migrate.yaml.example to /opt/stackstorm/configs/")
        try:
            pools = config.get("pools") or {}
            copy = config.get("copy") or {}
            sync = config.get("sync") or {}
            settings = cls(
                source=_cluster(config.get("source_ceph"), SOURCE, "ceph"),
                destination=_cluster(config.get("destination_ceph"), DESTINATION, "cephpa1"),
                pools=Pools(
                    mirrored_cinder=names.pool_name(pools.get("mirrored_cinder_pool", "oscinder")),
                    mirrored_glance=names.pool_name(pools.get("mirrored_glance_pool", "osglance")),
                    destination_cinder=names.pool_name(
                        pools.get("destination_cinder_pool", "cinder-ceph-pa1-cl1")),
                    destination_glance=names.pool_name(
                        pools.get("destination_glance_pool", "glance-ct1-cl1"))),
                mirror_mode=names.mirror_mode(config.get("mirror_mode") or "snapshot"),
                copy_features=tuple(names.image_feature(f) for f in
                                    copy.get("image_features") or DEFAULT_COPY_FEATURES),
                copy_timeout=integer(copy.get("timeout"), "copy.timeout", 7200, 60,
                                     MAX_COPY_TIMEOUT),
                copy_stall=integer(copy.get("stall_timeout"), "copy.stall_timeout", 900, 0,
                                   MAX_COPY_TIMEOUT),
                rbd_timeout=integer(config.get("rbd_timeout"), "rbd_timeout", 120, 5, 3600),
                poll_interval=number(sync.get("poll_interval"), "sync.poll_interval", 2.0, 0.2,
                                     MAX_WAIT_TIMEOUT),
                wait_timeout=integer(sync.get("wait_timeout"), "sync.wait_timeout", 540, 1,
                                     MAX_WAIT_TIMEOUT),
                clouds={role: section for role, section in (
                    (role, config.get("%s_cloud" % role)) for role in CLOUD_ROLES)
                    if _configured(section)},
                destination_manage_host=config.get("destination_manage_host") or None,
                destination_glance_store=config.get("destination_glance_store") or "ceph",
                sensors=SensorSettings.from_config(config.get("sensors")),
                capacity_reserve=int(number((config.get("capacity") or {}).get("reserve_gib"),
                                            "capacity.reserve_gib", 0, 0) * 1024 ** 3),
                notifications={role: section for role, section in (
                    (role, config.get("%s_notifications" % role)) for role in SIDES)
                    if isinstance(section, Mapping) and section.get("host")},
            )
        except ConfigError:
            raise
        except (CephMigrateError, TypeError, ValueError) as exc:
            raise ConfigError("invalid ceph_migrate configuration: %s" % exc) from None
        settings._check()
        return settings

    def _check(self) -> None:
        if "journaling" in self.copy_features:
            raise ConfigError("copy.image_features must not contain journaling: a journaled "
                              "copy is several times slower and stays journaled")
        if (self.source.name, self.source.conf) == (self.destination.name, self.destination.conf):
            raise ConfigError("source_ceph and destination_ceph point at the same cluster")

    def cluster(self, side: str) -> CephCluster:
        if side not in SIDES:
            raise ConfigError("cluster must be 'source' or 'destination', got %r" % (side,))
        return self.source if side == SOURCE else self.destination

    def rbd(self, side: str) -> CephCli:
        return CephCli(self.cluster(side), timeout=self.rbd_timeout,
                       stall_timeout=self.copy_stall)

    def ceph(self, side: str) -> CephCli:
        """The ``ceph`` tool (fsid, df, osd dump) as the pack's user on that cluster."""
        return CephCli(self.cluster(side), timeout=self.rbd_timeout, program="ceph")

    def fsid(self, side: str) -> str:
        """The cluster's FSID (what Glance's rbd:// locations name, not the cluster name)."""
        return self.ceph(side).run("fsid")["fsid"]

    def image(self, side: str, pool: str, image: str) -> RbdImage:
        return RbdImage(self.rbd(side), pool, image)

    def cloud(self, role: str) -> CloudSettings:
        """The OpenStack cloud for ``role``; image_registration falls back to destination."""
        section = self.clouds.get(role)
        if section is None and role == IMAGE_REGISTRATION:
            section = self.clouds.get(DESTINATION)
        if section is None:
            raise ConfigError("%s_cloud is not configured: the OpenStack steps need it" % role)
        return CloudSettings.from_config(section, role)


def _configured(cloud: Any) -> bool:
    """A cloud section counts once it names a cloud or a Keystone URL (st2 fills defaults in
    every section of the schema, so an untouched section is not empty)."""
    return isinstance(cloud, Mapping) and bool(cloud.get("cloud") or cloud.get("auth_url"))


def _cluster(section: Any, role: str, default_name: str) -> CephCluster:
    if not isinstance(section, Mapping):
        raise ConfigError("%s_ceph is missing from the configuration" % role)
    data: Dict[str, Any] = dict(section)
    name = data.get("cluster") or default_name
    return CephCluster(name=name, client_id=data.get("client_id") or "admin",
                       conf=data.get("conf") or None, keyring=data.get("keyring") or None,
                       key=data.get("key") or None, role=role)


GATES = ("ceph_admin", "tenant_admin")


def approvers(config: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """``{gate: {"users": [...], "roles": [...], "chat_users": [...]}}`` for every gate; empty
    users and roles mean anyone StackStorm lets respond (core.ask's own default), empty
    chat_users nobody from chat."""
    approvals = (config or {}).get("approvals") or {}
    return {gate: {kind: name_list((approvals.get(gate) or {}).get(kind),
                                   "approvals.%s.%s" % (gate, kind))
                   for kind in ("users", "roles", "chat_users")}
            for gate in GATES}


def self_approval(config: Mapping[str, Any]) -> bool:
    """Whether whoever started a migration may also approve its cutover gate."""
    return flag(((config or {}).get("approvals") or {}).get("self_approval"),
                "approvals.self_approval", default=False)
