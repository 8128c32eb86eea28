from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import cutover_server
from lib.waiting import datastore_reader, datastore_writer


class CutoverServer(PackAction):
    """A server's cutover window in one step: stop, last delta, root/volumes, counterpart."""

    @reported
    def run(self, server_id, wait_seconds=600, root_target="image", ephemeral=False):
        return cutover_server(self.settings, server_id, datastore_reader(self.action_service),
                              datastore_writer(self.action_service), timeout=wait_seconds,
                              root_target=root_target, ephemeral=ephemeral)
