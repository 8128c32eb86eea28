from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import prepare_ports
from lib.waiting import datastore_reader, datastore_writer


class PreparePorts(PackAction):
    """A source server's ports made at the destination before its cutover."""

    @reported
    def run(self, server_id, dry_run=False):
        return prepare_ports(self.settings, server_id, datastore_reader(self.action_service),
                             datastore_writer(self.action_service), dry_run=dry_run)
