from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.mirroring import disable_mirroring
from lib.settings import DESTINATION, SOURCE, Settings


class DisableMirroring(Action):
    """Stop replication of one image; refused until a verified copy is recorded."""

    @reported
    def run(self, image, pool=None, discard_replica=False):
        settings = Settings.from_config(self.config)
        return disable_mirroring(
            settings.image(SOURCE, pool or settings.pools.mirrored_cinder, image),
            settings.rbd(DESTINATION), discard_replica=discard_replica)
