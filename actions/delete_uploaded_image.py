from lib.action_support import reported
from lib.base_action import PackAction
from lib.glance import delete_uploaded_image


class DeleteUploadedImage(PackAction):
    """Rollback of the boot procedure: delete the image it uploaded from the source volume."""

    @reported
    def run(self, volume_id, image_name=None):
        return delete_uploaded_image(self.settings, volume_id, image_name)
