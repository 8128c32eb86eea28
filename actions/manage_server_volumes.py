from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import manage_server_volumes
from lib.waiting import datastore_reader


class ManageServerVolumes(PackAction):
    """A server's copied and checked volumes managed in its tenant's destination project."""

    @reported
    def run(self, server_id, root_target="image"):
        return manage_server_volumes(self.settings, server_id,
                                     datastore_reader(self.action_service),
                                     root_target=root_target)
