from lib.action_support import reported
from lib.base_action import PackAction
from lib.mirroring import restore_features
from lib.settings import SOURCE


class RestoreFeatures(PackAction):
    """Remove exactly the features enable_journal_features added (after mirroring is off)."""

    @reported
    def run(self, image, pool=None):
        settings = self.settings
        return restore_features(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image))
