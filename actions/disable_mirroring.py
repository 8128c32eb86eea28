from lib.action_support import reported
from lib.base_action import PackAction
from lib.mirroring import disable_mirroring
from lib.settings import DESTINATION, SOURCE


class DisableMirroring(PackAction):
    """Stop replication of one image; refused until a verified copy is recorded."""

    @reported
    def run(self, image, pool=None, discard_replica=False):
        settings = self.settings
        return disable_mirroring(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image),
            settings.rbd(DESTINATION), discard_replica=discard_replica)
