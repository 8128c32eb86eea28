from lib.action_support import reported
from lib.base_action import PackAction
from lib.diff_sync import verify_sync
from lib.progress import describe
from lib.settings import DESTINATION, SOURCE


class VerifySync(PackAction):
    """Compare the source and its export-diff copy at their newest common snapshot: in full,
    or only the changes since the last verified one."""

    @reported
    def run(self, image, pool=None, destination_pool=None, destination_image=None, full=True):
        settings = self.settings
        source = settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image)
        target = settings.image(DESTINATION, destination_pool or settings.pools.destination_cinder,
                                destination_image or image)
        return verify_sync(source, target, settings.copy_timeout, full=full,
                           report=lambda p: self.logger.info(describe(p)))
