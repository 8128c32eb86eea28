"""The pack configuration, parsed and validated once into typed settings."""
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from . import names
from .broker import BrokerSettings
from .ceph_cli import CephCli, CephCluster
from .clouds import CloudSettings
from .config_values import default, integer, number
from .errors import CephMigrateError, ConfigError
from .gates import Approvals
from .rbd_image import RbdImage

SOURCE = "source"
DESTINATION = "destination"
SIDES = (SOURCE, DESTINATION)
IMAGE_REGISTRATION = "image_registration"
CLOUD_ROLES = (SOURCE, DESTINATION, IMAGE_REGISTRATION)

# Each bounded step must give up on its own before StackStorm kills its action (copy_replica and
# verify_copy: 7500 s, wait_for_sync: 600 s), so it returns what workflows retry on.
MAX_COPY_TIMEOUT = 7200
MAX_WAIT_TIMEOUT = 570


@dataclass(frozen=True)
class Pools:
    mirrored_cinder: str
    mirrored_glance: str
    mirrored_nova: str
    destination_cinder: str
    destination_glance: str


@dataclass(frozen=True)
class SensorSettings:
    mirror_poll_interval: float
    stall_seconds: float
    fallback_poll_interval: float
    max_backoff: float

    @classmethod
    def from_config(cls, section: Any) -> "SensorSettings":
        section = section or {}

        def seconds(key: str, maximum: float = 3600) -> float:
            return number(section.get(key), "sensors." + key, default("sensors." + key), 1,
                          maximum)

        return cls(mirror_poll_interval=seconds("mirror_poll_interval"),
                   stall_seconds=seconds("stall_seconds", 86400),
                   fallback_poll_interval=seconds("fallback_poll_interval"),
                   max_backoff=seconds("max_backoff"))


@dataclass(frozen=True)
class Settings:
    """Everything the pack config says, each value read once (lib.config_values) with its
    default from the one table there."""

    source: CephCluster
    destination: CephCluster
    pools: Pools
    mirror_mode: str
    copy_features: Tuple[str, ...]
    copy_timeout: int
    copy_method: str                   # names.COPY_METHODS: how a data volume crosses
    copy_placement: str                # names.PLACEMENTS: where it lands (mirror method)
    promote_volume_type: Optional[str]  # the type of a volume managed in place (promote)
    copy_stall: int                    # seconds a copy or checksum may show no progress
    rbd_timeout: int
    poll_interval: float
    wait_timeout: int
    clouds: Mapping[str, CloudSettings]          # by role; image_registration falls back
    destination_manage_host: Optional[str]
    destination_glance_store: str
    sensors: SensorSettings
    notifications: Mapping[str, BrokerSettings]  # by side, those with a broker host
    capacity_reserve: int              # bytes kept free below a cluster's nearfull ratio
    approvals: Approvals

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

            def pool(key: str) -> str:
                return names.pool_name(pools.get(key, default("pools." + key)))

            def bounded(value: Any, key: str, minimum: int, maximum: int) -> int:
                return integer(value, key, default(key), minimum, maximum)

            settings = cls(
                source=_cluster(config.get("source_ceph"), SOURCE),
                destination=_cluster(config.get("destination_ceph"), DESTINATION),
                pools=Pools(mirrored_cinder=pool("mirrored_cinder_pool"),
                            mirrored_glance=pool("mirrored_glance_pool"),
                            mirrored_nova=pool("mirrored_nova_pool"),
                            destination_cinder=pool("destination_cinder_pool"),
                            destination_glance=pool("destination_glance_pool")),
                mirror_mode=names.mirror_mode(config.get("mirror_mode") or default("mirror_mode")),
                copy_features=tuple(names.image_feature(f) for f in
                                    copy.get("image_features") or default("copy.image_features")),
                copy_timeout=bounded(copy.get("timeout"), "copy.timeout", 60, MAX_COPY_TIMEOUT),
                copy_method=names.copy_method(copy.get("method") or default("copy.method")),
                copy_placement=names.placement(copy.get("placement")
                                               or default("copy.placement")),
                promote_volume_type=names.volume_type(copy["promote_volume_type"])
                if copy.get("promote_volume_type") else None,
                copy_stall=bounded(copy.get("stall_timeout"), "copy.stall_timeout", 0,
                                   MAX_COPY_TIMEOUT),
                rbd_timeout=bounded(config.get("rbd_timeout"), "rbd_timeout", 5, 3600),
                poll_interval=number(sync.get("poll_interval"), "sync.poll_interval",
                                     default("sync.poll_interval"), 0.2, MAX_WAIT_TIMEOUT),
                wait_timeout=bounded(sync.get("wait_timeout"), "sync.wait_timeout", 1,
                                     MAX_WAIT_TIMEOUT),
                clouds=_clouds(config),
                destination_manage_host=config.get("destination_manage_host") or None,
                destination_glance_store=config.get("destination_glance_store")
                or default("destination_glance_store"),
                sensors=SensorSettings.from_config(config.get("sensors")),
                capacity_reserve=int(number((config.get("capacity") or {}).get("reserve_gib"),
                                            "capacity.reserve_gib",
                                            default("capacity.reserve_gib"), 0) * 1024 ** 3),
                notifications={side: BrokerSettings.from_config(section) for side, section in (
                    (side, config.get("%s_notifications" % side)) for side in SIDES)
                    if isinstance(section, Mapping) and section.get("host")},
                approvals=Approvals.from_config(config),
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
        """The OpenStack cloud for ``role`` (image_registration falls back to destination)."""
        cloud = self.clouds.get(role)
        if cloud is None:
            raise ConfigError("%s_cloud is not configured: the OpenStack steps need it" % role)
        return cloud


def _clouds(config: Mapping[str, Any]) -> Dict[str, CloudSettings]:
    """Each configured cloud by role; image_registration is the destination's credentials
    unless it has its own."""
    sections = {role: config.get("%s_cloud" % role) for role in CLOUD_ROLES}
    if not _configured(sections[IMAGE_REGISTRATION]):
        sections[IMAGE_REGISTRATION] = sections[DESTINATION]
    return {role: CloudSettings.from_config(section, role)
            for role, section in sections.items() if _configured(section)}


def _configured(cloud: Any) -> bool:
    """A cloud section counts once it names a cloud or a Keystone URL (st2 fills defaults in
    every section of the schema, so an untouched section is not empty)."""
    return isinstance(cloud, Mapping) and bool(cloud.get("cloud") or cloud.get("auth_url"))


def _cluster(section: Any, role: str) -> CephCluster:
    if not isinstance(section, Mapping):
        raise ConfigError("%s_ceph is missing from the configuration" % role)
    data: Dict[str, Any] = dict(section)
    key = "%s_ceph." % role
    return CephCluster(name=data.get("cluster") or default(key + "cluster"),
                       client_id=data.get("client_id") or default(key + "client_id"),
                       conf=data.get("conf") or None, keyring=data.get("keyring") or None,
                       key=data.get("key") or None, role=role)
