"""Installed into the sandbox's OpenStack virtualenv as nova/virt/ceph_migrate_rbd.py (Nova loads
drivers from nova.virt only) and named by nova.conf's compute_driver: Nova's fake virt driver
whose servers have real disks.

No guest runs, but each server's disks are RBD images in the `vms` pool, made as libvirt's RBD
image backend makes them, with Nova's own RBD code (nova.storage.rbd_utils): the root disk
`<uuid>_disk` is a copy-on-write clone of the image's rbd:// location on the same cluster,
grown to the flavor's root size; `<uuid>_disk.local` (the flavor's ephemeral disk),
`<uuid>_disk.eph<N>` (ephemeral block devices) and `<uuid>_disk.swap` are new images of their
size; a server booted from a volume has no root disk here. Deleting the server removes every
image of its uuid, as libvirt's cleanup does. Storage-level tests of servers are then honest.
"""
from os_brick.initiator import utils as brick_utils
from oslo_log import log as logging
from oslo_utils import units

from nova import exception
from nova.image import glance
from nova.storage import rbd_utils
from nova.virt import driver
from nova.virt import fake

LOG = logging.getLogger(__name__)

# The compute host this driver stands for has open-iscsi, whose iscsiadm scans manually, as
# the usual compute host does; this machine has no iscsiadm. It matters for one thing: a
# volume Cinder *managed* (the pack's way in) keeps shared_targets true and no service_uuid,
# and where iscsiadm cannot scan manually os-brick locks on that empty service_uuid and the
# attach fails (the pack's README says so: a known limit of such hosts, not of the sandbox).
brick_utils.ISCSI_SUPPORTS_MANUAL_SCAN = True


class RbdFakeDriver(fake.FakeDriverWithoutFakeNodes):
    """FakeDriverWithoutFakeNodes (a stable node uuid across restarts) with RBD disks."""

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        self._rbd = None

    @property
    def rbd(self):
        if self._rbd is None:   # [libvirt] images_rbd_pool, rbd_user, images_rbd_ceph_conf
            self._rbd = rbd_utils.RBDDriver()
        return self._rbd

    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        self._create_disks(context, instance, block_device_info)
        super().spawn(context, instance, image_meta, injected_files, admin_password,
                      allocations, network_info, block_device_info, power_on, accel_info)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        super().destroy(context, instance, network_info, block_device_info, destroy_disks,
                        destroy_secrets)
        if destroy_disks:
            self.rbd.cleanup_volumes(lambda name: name.startswith(instance.uuid))

    def _create_disks(self, context, instance, block_device_info):
        flavor = instance.flavor
        if instance.image_ref:      # not booted from a volume
            self._clone_root(context, instance, "%s_disk" % instance.uuid,
                             flavor.root_gb * units.Gi)
        ephemerals = driver.block_device_info_get_ephemerals(block_device_info)
        for idx, eph in enumerate(ephemerals):
            self._new_disk("%s_disk.eph%d" % (instance.uuid, idx), eph["size"] * units.Gi)
        if not ephemerals and flavor.ephemeral_gb:
            self._new_disk("%s_disk.local" % instance.uuid, flavor.ephemeral_gb * units.Gi)
        swap = driver.block_device_info_get_swap(block_device_info)
        swap_mb = swap["swap_size"] if driver.swap_is_usable(swap) else flavor.swap
        if swap_mb:
            self._new_disk("%s_disk.swap" % instance.uuid, swap_mb * units.Mi)

    def _clone_root(self, context, instance, name, size):
        """As libvirt's Rbd backend: clone a cloneable location, then grow to SIZE."""
        if not self.rbd.exists(name):
            image = glance.API().get(context, instance.image_ref, include_locations=True)
            if image.get("disk_format") not in ("raw", "iso"):
                raise exception.ImageUnacceptable(image_id=instance.image_ref,
                                                  reason="Image is not raw format")
            for location in image["locations"]:
                if self.rbd.is_cloneable(location, image):
                    self.rbd.clone(location, name)
                    break
            else:
                raise exception.ImageUnacceptable(image_id=instance.image_ref,
                                                  reason="No image locations are accessible")
            LOG.info("root disk %s/%s cloned from image %s", self.rbd.pool, name,
                     instance.image_ref, instance=instance)
        if size and size > self.rbd.size(name):
            self.rbd.resize(name, size)

    def _new_disk(self, name, size):
        if self.rbd.exists(name):
            return
        with rbd_utils.RADOSClient(self.rbd, self.rbd.pool) as client:
            rbd_utils.RbdProxy().create(client.ioctx, name, size, old_format=False,
                                        features=client.features)
        LOG.info("disk %s/%s created (%d bytes)", self.rbd.pool, name, size)
