from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import drop_server_snapshots


class DropServerSnapshots(PackAction):
    """The sync snapshots the pack took of a migrated server's source disks, dropped."""

    @reported
    def run(self, server_id, root_target="image"):
        return drop_server_snapshots(self.settings, server_id, root_target)
