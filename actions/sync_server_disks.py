from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import sync_server_disks
from lib.waiting import datastore_reader


class SyncServerDisks(PackAction):
    """A server's disks copied to the destination by export-diff rounds: while it runs, or
    the last round once it is stopped."""

    @reported
    def run(self, server_id, final=False, ephemeral=False, max_rounds=3, root_target="image"):
        return sync_server_disks(self.settings, server_id, final=final, ephemeral=ephemeral,
                                 max_rounds=max_rounds, root_target=root_target,
                                 read=datastore_reader(self.action_service))
