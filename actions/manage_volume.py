from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.cinder import manage_volume
from lib.migration import carried
from lib.settings import Settings


class ManageVolume(Action):
    """cinder manage of the verified copy, owned by the tenant's project at the destination."""

    @reported
    def run(self, volume_id, destination_project=None, destination_image=None,
            wait_seconds=300, migration=None):
        return manage_volume(Settings.from_config(self.config), volume_id, destination_project,
                             destination_image, timeout=wait_seconds,
                             migration=carried(migration, volume_id))
