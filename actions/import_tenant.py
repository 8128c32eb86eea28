from lib.action_support import reported
from lib.base_action import PackAction
from lib.tenant_infra import import_tenant, load_map, save_map
from lib.waiting import datastore_reader, datastore_writer


class ImportTenant(PackAction):
    """A tenant export into a destination project: each resource found through the mapping or
    its source tag, adopted if asked and equal, else created; the mapping kept."""

    @reported
    def run(self, export, destination_project=None, translation=None, kinds=None, adopt=False,
            dry_run=False, passwords="disabled"):
        source_id = export["project"]["id"]
        tmap = load_map(datastore_reader(self.action_service), source_id,
                        {"translation": translation or {}})
        kw = {"kinds": kinds} if kinds else {}
        result = import_tenant(self.settings, export, destination_project, tmap, adopt=adopt,
                               dry_run=dry_run, passwords=passwords,
                               keep_secret=datastore_writer(self.action_service, encrypt=True),
                               **kw)
        if not dry_run:
            save_map(datastore_writer(self.action_service), source_id, tmap,
                     datastore_reader(self.action_service))
        return result
