from lib.action_support import reported
from lib.base_action import PackAction
from lib.glance import register_image
from lib.migration import carried


class RegisterImage(PackAction):
    """Register the copied image at the destination Glance by its rbd:// location."""

    @reported
    def run(self, image_id, destination_project=None, image=None, name=None, snapshot="snap",
            verify_hash=False, migration=None):
        return register_image(self.settings, image_id, destination_project,
                              image=image, name=name, snapshot=snapshot, verify_hash=verify_hash,
                              migration=carried(migration, None))
