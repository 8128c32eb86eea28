from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.progress import describe
from lib.copying import verify_copy
from lib.settings import DESTINATION, SOURCE, Settings


class VerifyCopy(Action):
    """Compare the sha256 of the source image and its copy; record the match on the source."""

    @reported
    def run(self, image, pool=None, destination_pool=None, destination_image=None):
        settings = Settings.from_config(self.config)
        source = settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image)
        target = settings.image(DESTINATION,
                                destination_pool or settings.pools.destination_cinder,
                                destination_image or image)
        return verify_copy(source, target, settings.copy_timeout,
                           report=lambda p: self.logger.info(describe(p)))
