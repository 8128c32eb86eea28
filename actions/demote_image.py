from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.mirroring import demote
from lib.settings import Settings


class DemoteImage(Action):
    """Planned failover, step 1: demote the primary (stop I/O on it first)."""

    @reported
    def run(self, image, pool=None, cluster="source"):
        settings = Settings.from_config(self.config)
        return demote(settings.image(cluster, pool or settings.pools.mirrored_cinder, image))
