from lib.action_support import reported
from lib.base_action import PackAction
from lib.glance import upload_volume_to_image
from lib.migration import carried
from lib.waiting import datastore_reader


class UploadVolumeToImage(PackAction):
    """Procedure 2, first step: the boot volume becomes a raw Glance image at the source."""

    @reported
    def run(self, volume_id, image_name=None, disk_format="raw", allow_in_use=False,
            wait_seconds=540, migration=None):
        return upload_volume_to_image(self.settings, volume_id, image_name,
                                      disk_format=disk_format, allow_in_use=allow_in_use,
                                      timeout=wait_seconds,
                                      read=datastore_reader(self.action_service),
                                      migration=carried(migration, volume_id))
