from lib.action_support import reported
from lib.base_action import PackAction
from lib.in_place import verify_in_place
from lib.migration import Migration
from lib.progress import describe


class VerifyInPlace(PackAction):
    """Placement promote, after the window: the read-only source against the promoted snapshot."""

    @reported
    def run(self, migration, destination_image=None):
        settings = self.settings
        return verify_in_place(settings, Migration.from_dict(migration), destination_image,
                               report=lambda p: self.logger.info(describe(p)))
