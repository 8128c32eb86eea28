import functools

from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.glance import registered_image_exists
from lib.rollback import remove_copy
from lib.settings import DESTINATION, SOURCE, Settings


class RemoveCopy(Action):
    """Remove a copy the pack made at the destination (rollback); refuses anything else."""

    @reported
    def run(self, image, pool=None, source_image=None, source_pool=None):
        settings = Settings.from_config(self.config)
        source_pool = source_pool or settings.pools.mirrored_cinder
        source_image = source_image or image
        registered = None
        if settings.clouds:
            registered = functools.partial(registered_image_exists, settings)
        return remove_copy(
            settings.image(DESTINATION, pool or settings.pools.destination_cinder, image),
            replica=settings.image(DESTINATION, source_pool, source_image),
            source=settings.image(SOURCE, source_pool, source_image), registered=registered)
