from lib.action_support import reported
from lib.base_action import PackAction
from lib.copying import remove_image
from lib.errors import RefusedError
from lib.settings import DESTINATION, SOURCE


class RemoveImage(PackAction):
    """Remove a source image once its verified copy is recorded and present."""

    @reported
    def run(self, image, pool=None, cluster="source", copy_pool=None, copy_image=None):
        if cluster != SOURCE:
            raise RefusedError("remove_image removes source images only: at the destination "
                               "an image may be a volume or an image of the cloud there; "
                               "remove_copy removes what the pack proves it made")
        settings = self.settings
        return remove_image(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image),
            settings.image(DESTINATION, copy_pool or settings.pools.destination_cinder,
                           copy_image or image))
