from lib.action_support import reported
from lib.base_action import PackAction
from lib.planning import plan_boot_volume_migration


class PlanBootVolumeMigration(PackAction):
    """Dry run of procedure 2 (a boot volume through Glance): plan and checks, no change."""

    @reported
    def run(self, volume_id, destination_project=None, allow_in_use=False):
        report = plan_boot_volume_migration(self.settings, volume_id,
                                            destination_project, allow_in_use)
        return (report["ok"], report)
