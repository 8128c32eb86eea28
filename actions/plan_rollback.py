from lib.action_support import reported
from lib.base_action import PackAction
from lib.rollback import plan_rollback


class PlanRollback(PackAction):
    """What a rollback of one migration would undo, read-only (the rollback's dry run)."""

    @reported
    def run(self, volume_id, procedure="data", destination_project=None):
        return plan_rollback(self.settings, volume_id, procedure,
                             destination_project)
