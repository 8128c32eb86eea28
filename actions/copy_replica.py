from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.progress import describe
from lib.copying import copy_image
from lib.settings import DESTINATION, SOURCE, Settings


class CopyReplica(Action):
    """Copy the read-only replica into the destination Cinder pool, without journaling."""

    @reported
    def run(self, image, pool=None, destination_pool=None, destination_image=None):
        settings = Settings.from_config(self.config)
        pool = pool or settings.pools.mirrored_cinder
        replica = settings.image(DESTINATION, pool, image)
        target = settings.image(DESTINATION, destination_pool or settings.pools.destination_cinder,
                                destination_image or image)
        return copy_image(replica, target, settings.copy_features, settings.copy_timeout,
                          primary=settings.image(SOURCE, pool, image),
                          report=lambda p: self.logger.info(describe(p)))
