from lib.action_support import reported
from lib.base_action import PackAction
from lib.mirroring import promote_image


class PromoteImage(PackAction):
    """Planned failover, step 2: promote the replica once the demotion reached it."""

    @reported
    def run(self, image, pool=None, cluster="destination", force=False, wait_seconds=60):
        settings = self.settings
        return promote_image(
            settings.image(cluster, pool or settings.pools.mirrored_cinder, image),
            force=force, timeout=wait_seconds, poll_interval=settings.poll_interval)
