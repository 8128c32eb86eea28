from lib.action_support import reported
from lib.base_action import PackAction
from lib.diff_sync import presync, sync_round
from lib.progress import describe
from lib.settings import DESTINATION, SOURCE


class SyncImage(PackAction):
    """Bring the copy in the destination Cinder pool up to a new snapshot of the source with
    rbd export-diff | rbd import-diff: rounds while in use, or one final round."""

    @reported
    def run(self, image, pool=None, destination_pool=None, destination_image=None,
            final=False, max_rounds=3):
        settings = self.settings
        source = settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image)
        target = settings.image(DESTINATION, destination_pool or settings.pools.destination_cinder,
                                destination_image or image)
        report = lambda p: self.logger.info(describe(p))      # noqa: E731
        if final:
            return sync_round(source, target, settings.copy_features, settings.copy_timeout,
                              report, prune=False)
        return presync(source, target, settings.copy_features, settings.copy_timeout,
                       max_rounds=max_rounds, report=report)
