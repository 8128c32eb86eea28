from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.settings import DESTINATION, SOURCE, Settings
from lib.sync_check import sync_report


class GetMirrorStatus(Action):
    """Is the replica in sync (live check), and what rbd-mirror reports: percent, rate, ETA."""

    @reported
    def run(self, image, pool=None):
        settings = Settings.from_config(self.config)
        pool = pool or settings.pools.mirrored_cinder
        return sync_report(settings.image(SOURCE, pool, image),
                           settings.image(DESTINATION, pool, image))
