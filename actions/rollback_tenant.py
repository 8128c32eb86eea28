from lib.action_support import reported
from lib.base_action import PackAction
from lib.tenant_infra import load_map, rollback_tenant, save_map
from lib.waiting import datastore_reader, datastore_writer


class RollbackTenant(PackAction):
    """Delete what import_tenant made at the destination (never what it adopted)."""

    @reported
    def run(self, source_project_id, dry_run=False):
        tmap = load_map(datastore_reader(self.action_service), source_project_id)
        result = rollback_tenant(self.settings, tmap, dry_run=dry_run)
        if not dry_run:
            save_map(datastore_writer(self.action_service), source_project_id, tmap,
                     datastore_reader(self.action_service))
        return result
