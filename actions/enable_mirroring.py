from lib.action_support import reported
from lib.base_action import PackAction
from lib.mirroring import enable_mirroring
from lib.settings import DESTINATION, SOURCE


class EnableMirroring(PackAction):
    """Start rbd-mirror replication of one source image (image-mode pool)."""

    @reported
    def run(self, image, pool=None, mode=None):
        settings = self.settings
        pool = pool or settings.pools.mirrored_cinder
        return enable_mirroring(settings.image(SOURCE, pool, image),
                                settings.image(DESTINATION, pool, image),
                                mode or settings.mirror_mode)
