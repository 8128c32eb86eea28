from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_rollback import rollback_server
from lib.waiting import datastore_reader, datastore_writer


class RollbackServer(PackAction):
    """A server's migration undone: the destination's part first, then the source as it was."""

    @reported
    def run(self, server_id, dry_run=False, wait_seconds=300):
        return rollback_server(self.settings, server_id, datastore_reader(self.action_service),
                               datastore_writer(self.action_service), dry_run=dry_run,
                               timeout=wait_seconds)
