from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.glance import register_image
from lib.migration import carried
from lib.settings import Settings


class RegisterImage(Action):
    """Register the copied image at the destination Glance by its rbd:// location."""

    @reported
    def run(self, image_id, destination_project=None, image=None, name=None, snapshot="snap",
            verify_hash=False, migration=None):
        return register_image(Settings.from_config(self.config), image_id, destination_project,
                              image=image, name=name, snapshot=snapshot, verify_hash=verify_hash,
                              migration=carried(migration, None))
