from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.plan import VolumeMigrationPlan, preflight
from lib.settings import Settings


class PlanVolumeMigration(Action):
    """Dry run of procedure 1: the plan and every read-only check, nothing changed."""

    @reported
    def run(self, volume_id, mode=None, destination_image=None):
        settings = Settings.from_config(self.config)
        plan = VolumeMigrationPlan.build(settings, volume_id, mode, destination_image)
        report = preflight(settings, plan)
        return (report["ok"], report)
