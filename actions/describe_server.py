from lib.action_support import reported
from lib.base_action import PackAction
from lib.servers import describe


class DescribeServer(PackAction):
    """Read-only: a source server as its migration sees it, and what would stop it."""

    @reported
    def run(self, server_id):
        return describe(self.settings, server_id)
