from lib.action_support import reported
from lib.base_action import PackAction
from lib.in_place import promote_in_place
from lib.migration import Migration


class PromoteInPlace(PackAction):
    """Placement promote, inside the window: demote the source, promote its replica, snapshot it."""

    @reported
    def run(self, migration, wait_seconds=120):
        settings = self.settings
        return promote_in_place(settings, Migration.from_dict(migration), wait_seconds)
