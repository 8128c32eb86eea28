from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import release_source_server
from lib.waiting import datastore_reader


class ReleaseSourceServer(PackAction):
    """The source server locked and tagged once its counterpart stands at the destination."""

    @reported
    def run(self, server_id):
        return release_source_server(self.settings, server_id,
                                     datastore_reader(self.action_service))
