from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_plan import workload


class TenantWorkload(PackAction):
    """Read-only: a source project's servers and detached volumes, in the order they go."""

    @reported
    def run(self, project):
        return workload(self.settings, project)
