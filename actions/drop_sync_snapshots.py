from lib.action_support import reported
from lib.base_action import PackAction
from lib.diff_sync import drop_snapshots, synced_pair
from lib.rbd_image import outcome


class DropSyncSnapshots(PackAction):
    """Remove the sync snapshots the pack took, from the copy (before cinder manage) or from
    the source (at the cleanup)."""

    @reported
    def run(self, side, image=None, pool=None, destination_pool=None, destination_image=None,
            migration=None):
        source, target = synced_pair(self.settings, image, pool, destination_pool,
                                     destination_image, migration)
        where = source if side == "source" else target
        removed = drop_snapshots(where, source)
        return outcome(bool(removed), removed=removed, image=where.spec, side=side)
