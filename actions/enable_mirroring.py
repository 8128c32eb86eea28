from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.mirroring import enable_mirroring
from lib.settings import DESTINATION, SOURCE, Settings


class EnableMirroring(Action):
    """Start rbd-mirror replication of one source image (image-mode pool)."""

    @reported
    def run(self, image, pool=None, mode=None):
        settings = Settings.from_config(self.config)
        pool = pool or settings.pools.mirrored_cinder
        return enable_mirroring(settings.image(SOURCE, pool, image),
                                settings.image(DESTINATION, pool, image),
                                mode or settings.mirror_mode)
