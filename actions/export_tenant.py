from lib.action_support import reported
from lib.base_action import PackAction
from lib.tenant_infra import export_tenant


class ExportTenant(PackAction):
    """Read-only: a source project's resources as a document keyed by source id."""

    @reported
    def run(self, project):
        return export_tenant(self.settings, project)
