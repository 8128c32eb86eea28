from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.mirroring import restore_features
from lib.settings import SOURCE, Settings


class RestoreFeatures(Action):
    """Remove exactly the features enable_journal_features added (after mirroring is off)."""

    @reported
    def run(self, image, pool=None):
        settings = Settings.from_config(self.config)
        return restore_features(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image))
