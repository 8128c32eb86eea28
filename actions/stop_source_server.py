from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import stop_source_server


class StopSourceServer(PackAction):
    """The source server stopped for its cutover (a running one tagged first)."""

    @reported
    def run(self, server_id, wait_seconds=600):
        return stop_source_server(self.settings, server_id, wait_seconds)
