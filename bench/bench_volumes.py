"""What the volume benchmarks share: the sandbox's tenant, and a volume of random data."""
import uuid
from typing import Any, Optional, Tuple

from lib.settings import SOURCE, Settings
from rbd_writer import write_random


def tenant(config: dict) -> Any:
    """The source cloud's tenant user (pa1-tenant of the sandbox's clouds.yaml)."""
    import openstack.config

    clouds = openstack.config.OpenStackConfig(config_files=[config["source_cloud"]
                                                            ["clouds_yaml"]])
    return openstack.connection.Connection(config=clouds.get_one(cloud="pa1-tenant"))


def random_volume(conn: Any, settings: Settings, size_gib: int, name: str = "bench",
                  fill_mib: Optional[int] = None, offset_mib: int = 0) -> Tuple[Any, str]:
    """A tenant volume of SIZE_GIB, FILL_MIB of random data written into its RBD image (all of
    it by default); the volume and its image's spec."""
    volume = conn.block_storage.create_volume(name="%s-%s" % (name, uuid.uuid4().hex[:6]),
                                              size=size_gib, volume_type="ceph")
    volume = conn.block_storage.wait_for_status(volume, "available", interval=1, wait=120)
    spec = "%s/volume-%s" % (settings.pools.mirrored_cinder, volume.id)
    write_random(settings.cluster(SOURCE), spec,
                 size_gib * 1024 if fill_mib is None else fill_mib, offset_mib=offset_mib)
    return volume, spec
