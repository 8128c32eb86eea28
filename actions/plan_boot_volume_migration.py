from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.planning import plan_boot_volume_migration
from lib.settings import Settings


class PlanBootVolumeMigration(Action):
    """Dry run of procedure 2 (a boot volume through Glance): plan and checks, no change."""

    @reported
    def run(self, volume_id, destination_project=None, allow_in_use=False):
        report = plan_boot_volume_migration(Settings.from_config(self.config), volume_id,
                                            destination_project, allow_in_use)
        return (report["ok"], report)
