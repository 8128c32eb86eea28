from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.rollback import remove_copy
from lib.settings import DESTINATION, Settings


class RemoveCopy(Action):
    """Remove a copy the pack made at the destination (rollback); refuses anything else."""

    @reported
    def run(self, image, pool=None):
        settings = Settings.from_config(self.config)
        return remove_copy(settings.image(DESTINATION, pool or settings.pools.destination_cinder,
                                          image))
