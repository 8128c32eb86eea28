from lib.action_support import reported
from lib.base_action import PackAction
from lib.server_compare import compare_tenant_servers
from lib.tenant_infra import load_map
from lib.waiting import datastore_reader


class CompareTenant(PackAction):
    """Read-only: what differs between a tenant export and the destination project, its
    migrated servers included."""

    @reported
    def run(self, export, destination_project=None):
        read = datastore_reader(self.action_service)
        tmap = load_map(read, export["project"]["id"])
        return compare_tenant_servers(self.settings, export, destination_project, tmap, read)
