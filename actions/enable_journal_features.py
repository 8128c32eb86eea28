from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.mirroring import ensure_journal_features
from lib.settings import SOURCE, Settings


class EnableJournalFeatures(Action):
    """Journal mode only: enable exclusive-lock and journaling, remembering what was added."""

    @reported
    def run(self, image, pool=None):
        settings = Settings.from_config(self.config)
        return ensure_journal_features(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image))
