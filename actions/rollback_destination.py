from lib.action_support import reported
from lib.base_action import PackAction
from lib.rollback import rollback_destination


class RollbackDestination(PackAction):
    """Undo what the pack created at the destination for one source volume or image."""

    @reported
    def run(self, source_id, destination_project, delete_data=False, source_image_id=None):
        return rollback_destination(self.settings, source_id,
                                    destination_project, delete_data, source_image_id)
