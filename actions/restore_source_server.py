from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import restore_source_server


class RestoreSourceServer(PackAction):
    """The source server as it was before its migration: unlocked, untagged, running again."""

    @reported
    def run(self, server_id, wait_seconds=600):
        return restore_source_server(self.settings, server_id, wait_seconds)
