from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.glance import delete_uploaded_image
from lib.settings import Settings


class DeleteUploadedImage(Action):
    """Rollback of the boot procedure: delete the image it uploaded from the source volume."""

    @reported
    def run(self, volume_id, image_name=None):
        return delete_uploaded_image(Settings.from_config(self.config), volume_id, image_name)
