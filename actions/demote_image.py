from lib.action_support import reported
from lib.base_action import PackAction
from lib.mirroring import demote_image


class DemoteImage(PackAction):
    """Planned failover, step 1: demote the primary (stop I/O on it first)."""

    @reported
    def run(self, image, pool=None, cluster="source", missing_ok=False):
        settings = self.settings
        return demote_image(settings.image(cluster, pool or settings.pools.mirrored_cinder, image),
                            missing_ok)
