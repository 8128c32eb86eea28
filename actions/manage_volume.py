from lib.action_support import reported
from lib.base_action import PackAction
from lib.cinder import manage_volume
from lib.migration import carried


class ManageVolume(PackAction):
    """cinder manage of the verified copy, owned by the tenant's project at the destination."""

    @reported
    def run(self, volume_id, destination_project=None, destination_image=None,
            wait_seconds=300, migration=None):
        return manage_volume(self.settings, volume_id, destination_project,
                             destination_image, timeout=wait_seconds,
                             migration=carried(migration, volume_id))
