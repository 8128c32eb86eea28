from lib.action_support import reported
from lib.base_action import PackAction
from lib.planning import plan_volume_migration


class PlanVolumeMigration(PackAction):
    """Dry run of procedure 1: the plan and every read-only check, nothing changed."""

    @reported
    def run(self, volume_id, mode=None, destination_image=None, destination_project=None,
            allow_in_use=False, method=None, placement=None):
        report = plan_volume_migration(self.settings, volume_id, mode, destination_image,
                                       destination_project, allow_in_use, method, placement)
        return (report["ok"], report)
