from lib.action_support import reported
from lib.base_action import PackAction
from lib.progress import describe
from lib.copying import copy_replica
from lib.settings import DESTINATION, SOURCE


class CopyReplica(PackAction):
    """Copy the read-only replica into the destination Cinder pool, without journaling."""

    @reported
    def run(self, image, pool=None, destination_pool=None, destination_image=None):
        settings = self.settings
        pool = pool or settings.pools.mirrored_cinder
        replica = settings.image(DESTINATION, pool, image)
        target = settings.image(DESTINATION, destination_pool or settings.pools.destination_cinder,
                                destination_image or image)
        return copy_replica(replica, target, settings.copy_features, settings.copy_timeout,
                            primary=settings.image(SOURCE, pool, image),
                            report=lambda p: self.logger.info(describe(p)))
