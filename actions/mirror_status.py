from lib.action_support import reported
from lib.base_action import PackAction
from lib.settings import DESTINATION, SOURCE
from lib.sync_check import mirror_status


class GetMirrorStatus(PackAction):
    """Is the replica in sync (live check), and what rbd-mirror reports: percent, rate, ETA."""

    @reported
    def run(self, image, pool=None):
        settings = self.settings
        pool = pool or settings.pools.mirrored_cinder
        return mirror_status(settings.image(SOURCE, pool, image),
                             settings.image(DESTINATION, pool, image))
