from lib.action_support import reported
from lib.base_action import PackAction
from lib.mirroring import mirror_snapshot
from lib.settings import SOURCE


class MirrorSnapshot(PackAction):
    """Snapshot mode: take a mirror snapshot so the next sync ships all writes so far."""

    @reported
    def run(self, image, pool=None):
        settings = self.settings
        return mirror_snapshot(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image))
