from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.rollback import rollback_destination
from lib.settings import Settings


class RollbackDestination(Action):
    """Undo what the pack created at the destination for one source volume or image."""

    @reported
    def run(self, source_id, destination_project, delete_data=False, source_image_id=None):
        return rollback_destination(Settings.from_config(self.config), source_id,
                                    destination_project, delete_data, source_image_id)
