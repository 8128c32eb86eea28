from lib.action_support import reported
from lib.base_action import PackAction


class GateApprovers(PackAction):
    """Who answers each approval gate (the pack config's ``approvals``), for core.ask."""

    @reported
    def run(self):
        return self.approvals.gates
