from lib.action_support import reported
from lib.base_action import PackAction
from lib.errors import ConfigError
from lib.tenant_infra import export_from_os_migrate, export_tenant


class ExportTenant(PackAction):
    """Read-only: a source project's resources as a document keyed by source id, from the
    source cloud or from OS Migrate's exported files."""

    @reported
    def run(self, project, os_migrate_files=None):
        if not os_migrate_files:
            return export_tenant(self.settings, project)
        texts = []
        for path in os_migrate_files:
            try:
                with open(path, encoding="utf-8") as handle:
                    texts.append(handle.read())
            except OSError as exc:
                raise ConfigError("cannot read %s: %s" % (path, exc.strerror)) from None
        return export_from_os_migrate(texts, project)
