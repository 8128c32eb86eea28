from lib.action_support import reported
from lib.base_action import PackAction
from lib.cinder import describe_volume


class DescribeVolume(PackAction):
    """A source volume as a migration sees it: Cinder's view and its RBD image's."""

    @reported
    def run(self, volume_id):
        return describe_volume(self.settings, volume_id)
