from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.cinder import describe_volume
from lib.settings import Settings


class DescribeVolume(Action):
    """A source volume as a migration sees it: Cinder's view and its RBD image's."""

    @reported
    def run(self, volume_id):
        return describe_volume(Settings.from_config(self.config), volume_id)
