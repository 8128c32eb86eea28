from lib.action_support import reported
from lib.base_action import PackAction
from lib.mirroring import enable_journal_features
from lib.settings import SOURCE


class EnableJournalFeatures(PackAction):
    """Journal mode only: enable exclusive-lock and journaling, remembering what was added."""

    @reported
    def run(self, image, pool=None):
        settings = self.settings
        return enable_journal_features(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image))
