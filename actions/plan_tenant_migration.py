from lib.action_support import reported
from lib.base_action import PackAction
from lib.tenant_infra import load_map, plan_tenant_migration
from lib.waiting import datastore_reader


class PlanTenantMigration(PackAction):
    """Read-only: the import's dry run, the destination's quotas against what the tenant uses,
    and room for what the import writes."""

    @reported
    def run(self, export, destination_project=None, translation=None, kinds=None, adopt=False,
            passwords="disabled"):
        tmap = load_map(datastore_reader(self.action_service), export["project"]["id"],
                        {"translation": translation or {}})
        kw = {"kinds": kinds} if kinds else {}
        return plan_tenant_migration(self.settings, export, destination_project, tmap,
                                     adopt=adopt, passwords=passwords, **kw)
