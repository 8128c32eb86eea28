from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import create_server
from lib.waiting import datastore_reader, datastore_writer


class CreateServer(PackAction):
    """A source server's counterpart made at the destination on what was brought."""

    @reported
    def run(self, server_id, power_on=True, dry_run=False, wait_seconds=600,
            root_target="image", ephemeral=False):
        return create_server(self.settings, server_id, power_on,
                             datastore_reader(self.action_service),
                             datastore_writer(self.action_service), dry_run=dry_run,
                             timeout=wait_seconds, root_target=root_target,
                             ephemeral=ephemeral)
