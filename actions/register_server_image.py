from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_migration import register_server_image
from lib.waiting import datastore_reader


class RegisterServerImage(PackAction):
    """A server's checked root disk registered at the destination Glance as its own image."""

    @reported
    def run(self, server_id):
        return register_server_image(self.settings, server_id,
                                     datastore_reader(self.action_service))
