from lib.action_support import reported
from lib.base_action import PackAction
from lib.diff_sync import presync, sync_round, synced_pair
from lib.progress import describe


class SyncImage(PackAction):
    """Bring the copy in the destination Cinder pool up to a new snapshot of the source with
    rbd export-diff | rbd import-diff: rounds while in use, or one final round."""

    @reported
    def run(self, image=None, pool=None, destination_pool=None, destination_image=None,
            final=False, max_rounds=3, migration=None):
        settings = self.settings
        source, target = synced_pair(settings, image, pool, destination_pool, destination_image,
                                     migration)
        report = lambda p: self.logger.info(describe(p))      # noqa: E731
        if final:
            return sync_round(source, target, settings.copy_features, settings.copy_timeout,
                              report, prune=False)
        return presync(source, target, settings.copy_features, settings.copy_timeout,
                       max_rounds=max_rounds, report=report)
