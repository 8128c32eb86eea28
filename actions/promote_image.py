from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.mirroring import promote
from lib.settings import Settings


class PromoteImage(Action):
    """Planned failover, step 2: promote the replica once the demotion reached it."""

    @reported
    def run(self, image, pool=None, cluster="destination", force=False, wait_seconds=60):
        settings = Settings.from_config(self.config)
        return promote(settings.image(cluster, pool or settings.pools.mirrored_cinder, image),
                       force=force, timeout=wait_seconds, poll_interval=settings.poll_interval)
