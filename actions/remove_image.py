from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.copying import remove_image
from lib.settings import DESTINATION, SOURCE, Settings


class RemoveImage(Action):
    """Remove an image; a source image only once its verified copy is recorded and present."""

    @reported
    def run(self, image, pool=None, cluster="source", copy_pool=None, copy_image=None):
        settings = Settings.from_config(self.config)
        target = settings.image(cluster, pool or settings.pools.mirrored_cinder, image)
        verified_copy = None
        if cluster == SOURCE:
            verified_copy = settings.image(
                DESTINATION, copy_pool or settings.pools.destination_cinder, copy_image or image)
        return remove_image(target, verified_copy)
