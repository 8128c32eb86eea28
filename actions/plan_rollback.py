from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.rollback import plan_rollback
from lib.settings import Settings


class PlanRollback(Action):
    """What a rollback of one migration would undo, read-only (the rollback's dry run)."""

    @reported
    def run(self, volume_id, procedure="data", destination_project=None):
        return plan_rollback(Settings.from_config(self.config), volume_id, procedure,
                             destination_project)
