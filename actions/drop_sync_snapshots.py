from lib.action_support import reported
from lib.base_action import PackAction
from lib.diff_sync import drop_snapshots
from lib.rbd_image import outcome
from lib.settings import DESTINATION, SOURCE


class DropSyncSnapshots(PackAction):
    """Remove the sync snapshots the pack took, from the copy (before cinder manage) or from
    the source (at the cleanup)."""

    @reported
    def run(self, image, side, pool=None, destination_pool=None, destination_image=None):
        settings = self.settings
        source = settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image)
        where = source if side == "source" else settings.image(
            DESTINATION, destination_pool or settings.pools.destination_cinder,
            destination_image or image)
        removed = drop_snapshots(where, source)
        return outcome(bool(removed), removed=removed, image=where.spec, side=side)
