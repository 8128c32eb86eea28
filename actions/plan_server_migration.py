from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_plan import plan_server_migration
from lib.waiting import datastore_reader


class PlanServerMigration(PackAction):
    """Read-only: a server's migration planned and checked (its tenant's mapping read from
    the datastore)."""

    @reported
    def run(self, server_id, root_target="image", ephemeral=False):
        return plan_server_migration(self.settings, server_id,
                                     datastore_reader(self.action_service), root_target,
                                     ephemeral)
