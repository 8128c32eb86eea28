from lib.action_support import reported
from lib.base_action import PackAction
from lib.progress import describe
from lib.copying import verify_copy
from lib.settings import DESTINATION, SOURCE


class VerifyCopy(PackAction):
    """Compare the sha256 of the source image and its copy; record the match on the source."""

    @reported
    def run(self, image, pool=None, destination_pool=None, destination_image=None):
        settings = self.settings
        source = settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image)
        target = settings.image(DESTINATION,
                                destination_pool or settings.pools.destination_cinder,
                                destination_image or image)
        return verify_copy(source, target, settings.copy_timeout,
                           report=lambda p: self.logger.info(describe(p)))
