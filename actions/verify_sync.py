from lib.action_support import reported
from lib.base_action import PackAction
from lib.diff_sync import synced_pair, verify_sync
from lib.progress import describe


class VerifySync(PackAction):
    """Compare the source and its export-diff copy at their newest common snapshot: in full,
    or only the changes since the last verified one."""

    @reported
    def run(self, image=None, pool=None, destination_pool=None, destination_image=None,
            full=True, migration=None):
        settings = self.settings
        source, target = synced_pair(settings, image, pool, destination_pool, destination_image,
                                     migration)
        return verify_sync(source, target, settings.copy_timeout, full=full,
                           report=lambda p: self.logger.info(describe(p)))
