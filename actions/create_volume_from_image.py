from lib.action_support import reported
from lib.base_action import PackAction
from lib.cinder import create_volume_from_image
from lib.migration import carried


class CreateVolumeFromImage(PackAction):
    """A tenant volume from the registered image (a copy-on-write clone in Ceph)."""

    @reported
    def run(self, image_id, destination_project, name, size_gib, volume_type=None,
            source_volume_id=None, wait_seconds=540, migration=None):
        return create_volume_from_image(self.settings, image_id,
                                        destination_project, name, size_gib,
                                        volume_type=volume_type, source_id=source_volume_id,
                                        timeout=wait_seconds,
                                        migration=carried(migration, source_volume_id))
