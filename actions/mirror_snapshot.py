from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.mirroring import mirror_snapshot
from lib.settings import SOURCE, Settings


class MirrorSnapshot(Action):
    """Snapshot mode: take a mirror snapshot so the next sync ships all writes so far."""

    @reported
    def run(self, image, pool=None):
        settings = Settings.from_config(self.config)
        return mirror_snapshot(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image))
