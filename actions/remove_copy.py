import functools

from lib.action_support import reported
from lib.base_action import PackAction
from lib.glance import registered_image_exists
from lib.rollback import remove_copy
from lib.settings import DESTINATION, SOURCE


class RemoveCopy(PackAction):
    """Remove a copy the pack made at the destination (rollback); refuses anything else."""

    @reported
    def run(self, image, pool=None, source_image=None, source_pool=None):
        settings = self.settings
        source_pool = source_pool or settings.pools.mirrored_cinder
        source_image = source_image or image
        registered = None
        if settings.clouds:
            registered = functools.partial(registered_image_exists, settings)
        return remove_copy(
            settings.image(DESTINATION, pool or settings.pools.destination_cinder, image),
            replica=settings.image(DESTINATION, source_pool, source_image),
            source=settings.image(SOURCE, source_pool, source_image), registered=registered)
