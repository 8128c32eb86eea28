from lib.action_support import reported
from lib.base_action import PackAction
from lib.tenant_infra import compare_tenant, load_map
from lib.waiting import datastore_reader


class CompareTenant(PackAction):
    """Read-only: what differs between a tenant export and the destination project."""

    @reported
    def run(self, export, destination_project=None):
        tmap = load_map(datastore_reader(self.action_service), export["project"]["id"])
        return compare_tenant(self.settings, export, destination_project, tmap)
