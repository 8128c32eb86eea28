from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.settings import approvers


class GateApprovers(Action):
    """Who answers each approval gate (the pack config's ``approvals``), for core.ask."""

    @reported
    def run(self):
        return approvers(self.config)
